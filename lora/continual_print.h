// What `train cl` prints (lora/continual.h): the run's set-up, each task boundary's line, each method's accuracy
// matrix and the comparison table. Rank 0 alone prints, and not with ContinualOptions::quiet.
#pragma once
#include <string>
#include <vector>

#include "lora/continual_setup.h"
#include "lora/run_files.h"
#include "model/device.h"
#include "model/precision.h"

// The tasks (sizes, label sets, metrics), the base, the LoRA and training settings, the evaluation mode.
void print_setup(const ContinualSetup& setup, const ContinualOptions& options, Device device,
                 MatmulPrecision precision);
// After task t (0-based): its row of the primary mode (and the other mode's), the diagnostics, the times.
void print_task_boundary(const std::string& method, int t, const ContinualSetup& setup, const MethodResult& result,
                         const AccuracyRows& rows, const Diagnostics& diagnostics, double rank_seconds,
                         double generate_seconds);
// A method's accuracy matrix and metrics.
void print_matrix(const MethodResult& result);
// The primary mode's numbers; with two modes (a run of closed-label tasks), the other one's AA in a last column.
void print_comparison(const std::vector<MethodResult>& results);
