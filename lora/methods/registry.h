// Every continual-learning method by name: `train cl --method NAME`. Each method's file declares, after its class,
// a struct <Name>Method with its MethodInfo (name, group, options with their flags and presets: lora/method_info.h)
// and its factory (MethodFactory, lora/method.h, or its own make); adding a method is its file and one line of
// RegisteredMethods below (and its #include).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lora/continual.h"
#include "lora/method_info.h"
#include "lora/methods/amlora.h"
#include "lora/methods/gainlora.h"
#include "lora/methods/ilora.h"
#include "lora/methods/inc_lora.h"
#include "lora/methods/mtl.h"
#include "lora/methods/nlora.h"
#include "lora/methods/olora.h"
#include "lora/methods/replay.h"
#include "lora/methods/seq_lora.h"

template <class... Method>
struct MethodList {
    static std::vector<const MethodInfo*> infos() { return {&Method::info...}; }
    // The method registered as `name`, or null.
    template <class Backend>
    static std::unique_ptr<ContinualMethod<Backend>> make(const std::string& name, const ContinualOptions& options) {
        std::unique_ptr<ContinualMethod<Backend>> method;
        (void)((name == Method::info.name && (method = Method::template make<Backend>(options), true)) || ...);
        return method;
    }
};

// The registry, in the order of `--method all` (lora/method_info.h, method_infos).
using RegisteredMethods = MethodList<SeqLoraMethod, IncLoraMethod, ReplayMethod, MtlMethod, ILoraMethod, OLoraMethod,
                                     NLoraMethod, GainLoraOLoraMethod, GainLoraInfLoraMethod, AmLoraMethod>;

template <class Backend>
std::unique_ptr<ContinualMethod<Backend>> make_method(const std::string& name, const ContinualOptions& options) {
    std::unique_ptr<ContinualMethod<Backend>> method = RegisteredMethods::make<Backend>(name, options);
    if (!method) fail("unknown method '" + name + "'");
    return method;
}
