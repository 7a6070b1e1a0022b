// Every continual-learning method by name: `train cl --method NAME`.
#pragma once
#include <memory>

#include "lora/continual.h"
#include "lora/methods/inc_lora.h"
#include "lora/methods/mtl.h"
#include "lora/methods/replay.h"
#include "lora/methods/seq_lora.h"

template <class Backend>
std::unique_ptr<ContinualMethod<Backend>> make_method(const std::string& name, const ContinualOptions& options) {
    if (name == "seqlora") return std::make_unique<SeqLora<Backend>>();
    if (name == "inclora") return std::make_unique<IncLora<Backend>>();
    if (name == "replay") return std::make_unique<Replay<Backend>>(size_t(options.replay_size), options.seed + 7);
    if (name == "mtl") return std::make_unique<Mtl<Backend>>();
    fail("unknown method '" + name + "'");
}
