// Which backend runs: --device cpu|cuda|auto (auto: the GPU when one is usable, else the CPU).
#pragma once
#include <string>

enum class Device { cpu, cuda };

// The number of usable CUDA devices, 0 when there is no GPU or no driver (model/cuda/device.cu).
int cuda_device_count();
// A one-line description of why no CUDA device is usable ("no CUDA-capable device is detected", ...).
std::string cuda_unavailable_reason();

// Resolves the flag value (under a launcher, CUDA also takes the local rank's GPU: model/distributed.h);
// `auto` prints a one-line notice on stderr when it falls back to the CPU.
// Fails on an unknown value, or on `cuda` when no GPU is usable.
Device resolve_device(const std::string& flag);
const char* device_name(Device device);
