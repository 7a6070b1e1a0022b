// Every continual-learning method's options, with ../shared/docs/METHODS.md's defaults; `train cl` has a flag for
// each. Options of the baselines (the replay buffer's size) live in ContinualOptions.
#pragma once
#include <string>

struct MethodOptions {
    // O-LoRA (section 5): L = CE + lambda1 * L_orth + lambda2 * L_L2
    float olora_lambda1 = 0.5f;
    float olora_lambda2 = 0.0f;
    std::string olora_orth = "abs";  // "abs": sum |A_old A_t^T|; "squared": the paper's sum of squares
    // N-LoRA (section 6): L = CE + lambda * sum ||B_t A_t||_1
    float nlora_lambda = 0.4f;
    std::string nlora_form = "full";  // "full": the d_out x d_in update; "rr": the official code's r x r A_t B_t
    // I-LoRA (section 8)
    float ilora_ema = 0.99f;           // slow <- ema * slow + (1 - ema) * fast, after every step
    float ilora_gamma = 1.0f;          // weight of the consistency loss
    std::string ilora_eval = "slow";   // evaluate with the slow ("slow") or the fast ("fast") adapter
    // GainLoRA (section 7)
    int gainlora_gate_hidden = 100;     // m
    float gainlora_epsilon0 = 0.995f;   // GPM threshold schedule start
    int gainlora_max_batches = 1000;    // batches of covariance collection at a task start
    bool gainlora_restore_norm = false;  // restore each row's pre-projection norm (the official code)
    // AM-LoRA (section 9)
    int amlora_attention_dim = 64;      // d_a
    float amlora_lambda = 0.01f;        // lambda_sp
    std::string amlora_norm = "sigmoid";  // "sigmoid" + L1, or "softmax" + entropy
};
