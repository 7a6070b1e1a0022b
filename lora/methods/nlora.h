// N-LoRA (../shared/docs/METHODS.md section 6): IncLoRA's structure (a new branch per task, the old ones frozen,
// all summed) and an L1 penalty that makes the new task's update sparse, so that it collides less with the old
// ones' nonzero entries:
//   L = CE + lambda * sum over adapted linears of ||B_t A_t||_1       (full form: the d_out x d_in update)
//   --nlora-form rr: lambda * sum ||A_t B_t||_1, the official code's r x r product (square modules only)
// with A_t (r,in), B_t = Bt_t^T (out,r) the new branch. Summed over the adapted linears, not averaged. The gradients
// go into the adapters' gradient buffer after the cross-entropy's backward (the extra_loss hook).
// Kernels: lora/cpu/regularizers.h and model/cuda/lora_regularizers.cu.
#pragma once
#include "lora/method_options.h"
#include "lora/methods/inc_lora.h"
#include "lora/regularizer_backend.h"

template <class Backend>
struct NLora : IncLora<Backend> {
    using Context = ContinualContext<Backend>;
    using real = typename Backend::real;
    float lambda;
    bool rr;

    explicit NLora(const MethodOptions& options) : lambda(options.nlora_lambda), rr(options.nlora_form == "rr") {
        if (options.nlora_form != "full" && options.nlora_form != "rr")
            fail("nlora: the form is 'full' or 'rr', got '" + options.nlora_form + "'");
    }
    std::string name() const override { return "nlora"; }

    void task_start(Context& context) override {
        if (rr)  // before any training: A_t B_t needs d_in = d_out at every adapted linear
            for (const LoraSlot& s : context.adapters.slots)
                if (s.shape.in != s.shape.out)
                    fail("nlora: --nlora-form rr needs square adapted modules (d_in = d_out, e.g. attn_proj): " +
                         std::string(lora_module_name(s.module)) + " is " + std::to_string(s.shape.in) + " -> " +
                         std::to_string(s.shape.out));
        IncLora<Backend>::task_start(context);
    }

    double extra_loss(Context& context) override {
        if (lambda == 0) return 0;
        LoraAdapters<Backend>& a = context.adapters;
        const int r = a.config.rank;
        const int k = (a.branches - 1) * r;  // rows of the earlier branches; the new branch's follow
        double loss = 0;
        for (const LoraSlot& s : a.slots) {
            const int in = s.shape.in, out = s.shape.out;
            const real* A_t = a.parameters + s.A + size_t(k) * in;     // (r,in)
            const real* Bt_t = a.parameters + s.Bt + size_t(k) * out;  // (r,out)
            loss += regularizers::l1_update_loss<Backend>(A_t, Bt_t, a.gradients + s.A + size_t(k) * in,
                                                          a.gradients + s.Bt + size_t(k) * out, r, in, out, lambda, rr);
        }
        return loss;
    }
};
