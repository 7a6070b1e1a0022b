// Continuations of a few prompts by a pretrained base (llm.c checkpoint), on the CPU backend: greedy and
// sampled (temperature, top-k), each token by a full forward pass over the context (the model is small); and the
// base's mean loss on token shards (--loss NAME=GLOB: --loss-batches batches of 8 rows of the model's context, at
// the same seeded random offsets as `train pretrain`'s validation, so the numbers compare).
// A development tool of the experiment (dev/experiments/run.sh), built by `make build/experiments/sample`.
//   sample --model M.bin [--tokenizer DIR] [--tokens N] [--temperature 0.8] [--top-k 40] [--seed 1]
//          [--prompt P ...] [--loss NAME=GLOB ... [--loss-batches 16]]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/token_loader.h"
#include "data/tokenizer.h"
#include "model/backend_cpu.h"
#include "model/checkpoint.h"
#include "model/gpt2.h"

int main(int argc, char** argv) {
    std::string model_path, tokenizer_dir = "../shared/data/tokenizer/gpt2";
    std::vector<std::string> prompts, losses;
    int tokens = 40, top_k = 40, loss_batches = 16;
    float temperature = 0.8f;
    unsigned seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--model") model_path = value;
        else if (flag == "--tokenizer") tokenizer_dir = value;
        else if (flag == "--prompt") prompts.push_back(value);
        else if (flag == "--loss") losses.push_back(value);
        else if (flag == "--loss-batches") loss_batches = std::stoi(value);
        else if (flag == "--tokens") tokens = std::stoi(value);
        else if (flag == "--temperature") temperature = std::stof(value);
        else if (flag == "--top-k") top_k = std::stoi(value);
        else if (flag == "--seed") seed = unsigned(std::stoul(value));
        else { std::fprintf(stderr, "error: unknown flag %s\n", flag.c_str()); return 1; }
    }
    if (model_path.empty() || (prompts.empty() && losses.empty())) {
        std::fprintf(stderr, "usage: sample --model M.bin [--prompt TEXT ...] [--tokens N] [--loss NAME=GLOB ...]\n");
        return 1;
    }
    try {
        GPT2Tokenizer tokenizer;
        tokenizer.load_dir(tokenizer_dir);
        Checkpoint checkpoint = read_checkpoint(model_path);
        const GPT2Config c = checkpoint.config;
        GPT2<CpuBackend<float>> model(c, checkpoint.parameters.data());
        std::mt19937 random(seed);
        std::printf("model %s: %d layers x %d channels, context %d\n\n", model_path.c_str(), c.num_layers,
                    c.channels, c.max_seq_len);
        for (const std::string& item : losses) {
            const size_t equals = item.find('=');
            if (equals == std::string::npos) throw std::runtime_error("--loss " + item + ": expected NAME=GLOB");
            TokenLoader loader(item.substr(equals + 1), 8, c.max_seq_len, c.vocab_size);
            loader.use_random_order(0x76616C6964617465ULL);  // the seed of train pretrain's validation rows
            double total = 0;
            for (int b = 0; b < loss_batches; b++) {
                loader.next_batch();
                gpt2_forward(model, loader.inputs.data(), loader.targets.data(), nullptr, 8, c.max_seq_len);
                total += model.mean_loss;
            }
            std::printf("loss %s %.4f (%d batches of 8x%d tokens)\n", item.substr(0, equals).c_str(),
                        total / loss_batches, loss_batches, c.max_seq_len);
        }
        if (!losses.empty()) std::printf("\n");
        for (const std::string& prompt : prompts) {
            for (bool greedy : {true, false}) {
                std::vector<int> ids = {50256};  // <|endoftext|>: the start of every pretraining document
                std::vector<int> p = tokenizer.encode(prompt);
                ids.insert(ids.end(), p.begin(), p.end());
                std::vector<int> generated;
                for (int n = 0; n < tokens; n++) {
                    const int T = int(std::min<size_t>(ids.size(), size_t(c.max_seq_len)));
                    std::vector<int> window(ids.end() - T, ids.end());
                    gpt2_forward(model, window.data(), nullptr, nullptr, 1, T);
                    const float* logits = model.acts.logits + size_t(T - 1) * c.padded_vocab_size;
                    int next = 0;
                    if (greedy) {
                        next = int(std::max_element(logits, logits + c.vocab_size) - logits);
                    } else {
                        std::vector<int> order(c.vocab_size);
                        std::iota(order.begin(), order.end(), 0);
                        std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                                          [&](int a, int b) { return logits[a] > logits[b]; });
                        std::vector<double> weights(top_k);
                        for (int k = 0; k < top_k; k++)
                            weights[k] = std::exp((logits[order[k]] - logits[order[0]]) / temperature);
                        next = order[std::discrete_distribution<int>(weights.begin(), weights.end())(random)];
                    }
                    if (next == 50256) break;
                    ids.push_back(next);
                    generated.push_back(next);
                }
                std::printf("[%s] %s|%s\n\n", greedy ? "greedy" : "sampled, T 0.8, top-40", prompt.c_str(),
                            tokenizer.decode(generated).c_str());
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
