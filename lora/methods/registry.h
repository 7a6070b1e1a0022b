// Every continual-learning method by name: `train cl --method NAME`.
#pragma once
#include <memory>

#include "lora/continual.h"
#include "lora/methods/amlora.h"
#include "lora/methods/gainlora.h"
#include "lora/methods/ilora.h"
#include "lora/methods/inc_lora.h"
#include "lora/methods/mtl.h"
#include "lora/methods/nlora.h"
#include "lora/methods/olora.h"
#include "lora/methods/replay.h"
#include "lora/methods/seq_lora.h"

template <class Backend>
std::unique_ptr<ContinualMethod<Backend>> make_method(const std::string& name, const ContinualOptions& options) {
    if (name == "seqlora") return std::make_unique<SeqLora<Backend>>();
    if (name == "inclora") return std::make_unique<IncLora<Backend>>();
    if (name == "replay") return std::make_unique<Replay<Backend>>(size_t(options.replay_size), options.seed + 7);
    if (name == "mtl") return std::make_unique<Mtl<Backend>>();
    if (name == "ilora") return std::make_unique<ILora<Backend>>(options.method, options.replay_size, options.seed + 7);
    if (name == "olora") return std::make_unique<OLora<Backend>>(options.method);
    if (name == "nlora") return std::make_unique<NLora<Backend>>(options.method);
    if (name == "gainlora-olora")
        return std::make_unique<GainLora<Backend>>(GainLora<Backend>::Variant::olora, options);
    if (name == "gainlora-inflora")
        return std::make_unique<GainLora<Backend>>(GainLora<Backend>::Variant::inflora, options);
    if (name == "amlora") return std::make_unique<AmLora<Backend>>(options);
    fail("unknown method '" + name + "'");
}
