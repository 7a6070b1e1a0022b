// Learning-rate schedules: constant, or linear warmup then cosine decay to final_fraction * max.
#pragma once
#include <cmath>
#include <string>

#include "data/file_io.h"

struct LearningRateSchedule {
    std::string kind = "cosine";  // "constant" or "cosine"
    float max_lr = 3e-4f;
    int warmup_steps = 0;
    int total_steps = 1;
    float final_fraction = 0.0f;

    void validate() const {
        if (kind != "constant" && kind != "cosine") fail("--lr-schedule '" + kind + "': expected constant or cosine");
        if (!(max_lr > 0) || warmup_steps < 0 || final_fraction < 0 || final_fraction > 1)
            fail("learning-rate schedule: need lr > 0, warmup >= 0, final fraction in [0, 1]");
    }

    // The rate for 1-based step `step`.
    float at(int step) const {
        if (kind == "constant") return max_lr;
        if (step <= warmup_steps) return max_lr * float(step) / float(warmup_steps);
        double decay = total_steps > warmup_steps ? double(step - warmup_steps) / (total_steps - warmup_steps) : 1.0;
        decay = std::min(1.0, decay);
        double cosine = 0.5 * (1.0 + std::cos(M_PI * decay));  // 1 -> 0
        double min_lr = double(max_lr) * final_fraction;
        return float(min_lr + cosine * (max_lr - min_lr));
    }
};
