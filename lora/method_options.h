// Every continual-learning method's options, with lora/METHODS.md's defaults: each field's initialiser is its
// default. `train cl` has a flag for each, declared with its help text and accepted values in the method's own file
// (its MethodInfo, lora/method_info.h). Options of the baselines (the replay buffer's size) live in
// ContinualOptions.
#pragma once
#include <string>

struct MethodOptions {
    // O-LoRA (section 5): L = CE + lambda1 * L_orth + lambda2 * L_L2
    float olora_lambda1 = 0.5f;
    float olora_lambda2 = 0.0f;
    std::string olora_orth = "abs";  // "abs": sum |A_old A_t^T|; "squared": the paper's sum of squares
    // N-LoRA (section 6, lora/methods/nlora.h): L = CE + lambda * sum over adapted linears of an L1 norm of the update
    float nlora_lambda = 0.4f;  // the official code's value (scripts/order_1.sh: --lamda_1 0.4)
    // "scaled" (default): r^2 * mean |B_t A_t| over the d_out x d_in entries, the official r x r form's element count
    //                     on any module shape; "full": sum |B_t A_t| (the paper's); "rr": sum |A_t B_t| (r x r, the
    //                     official code's, square modules only)
    std::string nlora_form = "scaled";
    // I-LoRA (section 8)
    // slow <- ema * slow + (1 - ema) * fast, after every step. 0.95 = 1 - 1/20: the slow adapter averages the last
    // ~20 steps, a sixth of a task of ~125 steps (500 examples, batch 8, 2 epochs); the paper's 0.99 (a 100-step
    // time constant) is for longer tasks: after 125 steps 0.99^125 = 28% of the slow adapter would still be its
    // value at the task's start (lora/methods/ilora.h). The CPU study's tasks have 1008 steps and use 0.99
    // (dev/experiments/run.sh).
    float ilora_ema = 0.95f;
    float ilora_gamma = 1.0f;          // weight of the consistency loss
    std::string ilora_eval = "slow";   // evaluate with the slow ("slow") or the fast ("fast") adapter
    // GainLoRA (section 7)
    int gainlora_gate_hidden = 100;     // m
    float gainlora_epsilon0 = 0.995f;   // GPM threshold schedule start
    int gainlora_max_batches = 1000;    // batches of covariance collection at a task start
    bool gainlora_restore_norm = true;  // restore each row's pre-projection norm, as the official code does
    // AM-LoRA (section 9)
    int amlora_attention_dim = 64;      // d_a
    float amlora_lambda = 0.01f;        // lambda_sp
    std::string amlora_norm = "sigmoid";  // "sigmoid" + L1, or "softmax" + entropy
};
