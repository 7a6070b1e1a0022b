// O-LoRA (lora/METHODS.md section 5): IncLoRA's structure (a new branch per task, the old ones frozen,
// all summed) and a regulariser that keeps the new branch's input subspace orthogonal to the old ones':
//   L = CE + lambda1 * L_orth + lambda2 * L_L2
//   L_orth = sum over adapted linears of sum_{p,q} |(A_old A_t^T)_pq|    (--orth squared: of (.)^2, the paper's)
//   L_L2   = sum over adapted linears of ||A_t||_F + ||B_t||_F
// with A_old (k,in) the rows of every earlier branch (k = (branches - 1) * r; L_orth = 0 at task 1) and A_t (r,in),
// Bt_t (r,out) the new branch's rows. Summed over the adapted linears, not averaged, as the official code does.
// The gradients go into the adapters' gradient buffer after the cross-entropy's backward (the extra_loss hook),
// so clipping and AdamW see their sum. Kernels: lora/cpu/regularizers.h and lora/cuda/regularizers.cu.
#pragma once
#include "lora/method_options.h"
#include "lora/methods/inc_lora.h"
#include "lora/regularizer_backend.h"

template <class Backend>
struct OLora : IncLora<Backend> {
    using Context = ContinualContext<Backend>;
    using real = typename Backend::real;
    float lambda1, lambda2;
    bool squared;

    explicit OLora(const MethodOptions& options)
        : lambda1(options.olora_lambda1), lambda2(options.olora_lambda2), squared(options.olora_orth == "squared") {
        if (options.olora_orth != "abs" && options.olora_orth != "squared")
            fail("olora: the orthogonality loss is 'abs' or 'squared', got '" + options.olora_orth + "'");
    }

    double extra_loss(Context& context) override {
        using Kernels = RegularizerKernels<Backend>;
        return sum_over_new_branches(context.adapters, [&](const NewBranch<Backend>& b) {
            double loss = 0;
            if (lambda1 != 0 && b.k > 0)
                loss += Kernels::orthogonality_loss(b.A_cat, b.A_t, b.dA_t, b.k, b.r, b.in, lambda1, squared);
            if (lambda2 != 0) loss += Kernels::l2_norm_loss(b.A_t, b.Bt_t, b.dA_t, b.dBt_t, b.r, b.in, b.out, lambda2);
            return loss;
        });
    }
};

// `--method olora` and its flags (lora/method_info.h; registered in lora/methods/registry.h)
struct OLoraMethod : MethodFactory<OLora> {
    static inline const MethodInfo info{
        "olora", false,
        {real_option("olora-lambda1", &MethodOptions::olora_lambda1, NumberRange::non_negative(),
                     "O-LoRA: weight of the orthogonality loss"),
         real_option("olora-lambda2", &MethodOptions::olora_lambda2, NumberRange::non_negative(),
                     "O-LoRA: weight of the L2 loss"),
         choice_option("orth", &MethodOptions::olora_orth, {"abs", "squared"},
                       "O-LoRA orthogonality loss: abs (sum |A_old A_t^T|) or squared (the paper)")}};
};
