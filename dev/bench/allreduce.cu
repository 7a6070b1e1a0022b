// The cost of data parallelism's gradient sums on the GPU: NCCL all-reduce (model/cuda/nccl.cu) of the trained
// tensors of GPT-2 124M (d12), timed per call: the LoRA gradients of `train cl` (r = 8 on qkv, the real-task
// default, and on all four linears) and, for comparison, the full gradient of `train pretrain`.
// Usage: mpirun -np N build/bench/allreduce [iterations]   (also runs alone, or under mpirun -np 1: NCCL's copy)
// Prints, on rank 0, one line per size: floats, MB, ms per all-reduce (mean over the iterations after a warmup)
// and the bus bandwidth 2 (N-1)/N * bytes / time, NCCL's measure of a ring's link use.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/file_io.h"
#include "model/lora_config.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/nccl.h"
#include "model/device.h"
#include "model/distributed.h"
#include "model/gpt2_config.h"
#include "model/parameters.h"

namespace {

// Trained LoRA parameters of rank r on the modules of `modules` in every layer: r (in + out) per linear.
size_t lora_parameter_count(const GPT2Config& config, unsigned modules, int rank) {
    size_t count = 0;
    for (int module = 0; module < NUM_LORA_MODULES; module++)
        if ((modules >> module) & 1u) {
            const LinearShape shape = lora_module_shape(module, config);
            count += size_t(config.num_layers) * rank * (shape.in + shape.out);
        }
    return count;
}

void time_all_reduce(const char* what, size_t count, int iterations) {
    float* gradients = static_cast<float*>(cuda::device_allocate(count * sizeof(float)));
    for (int i = 0; i < 3; i++) cuda::all_reduce_sum(gradients, count);  // warmup (and NCCL's setup)
    barrier("MPI_Barrier (before timing)");
    CUDA_CHECK(cudaDeviceSynchronize());
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; i++) cuda::all_reduce_sum(gradients, count);
    CUDA_CHECK(cudaDeviceSynchronize());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
                      iterations;
    const int N = distributed().world_size;
    const double bytes = double(count) * sizeof(float);
    const double bus = N > 1 ? 2.0 * (N - 1) / N * bytes / (ms * 1e-3) / 1e9 : 0.0;
    if (is_root_rank())
        std::printf("%-34s %11zu floats %8.2f MB %9.3f ms %8.1f GB/s bus\n", what, count, bytes / 1e6, ms, bus);
    cuda::device_free(gradients);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        distributed_init();
        const int iterations = argc > 1 ? std::atoi(argv[1]) : 20;
        if (iterations < 1) fail("iterations must be a positive integer, got '" + std::string(argv[1]) + "'");
        resolve_device("cuda");  // fails without a GPU; under a launcher, takes the local rank's GPU
        const GPT2Config config = config_from_spec("d12");
        if (is_root_rank())
            std::printf("allreduce: %d rank(s) (%s), GPT-2 124M (d12), %d iterations\n", distributed().world_size,
                        distributed().launcher.c_str(), iterations);
        time_all_reduce("LoRA r=8 qkv (cl, real tasks)", lora_parameter_count(config, 1u << LORA_QKV, 8), iterations);
        time_all_reduce("LoRA r=8 all linears", lora_parameter_count(config, parse_lora_modules("all"), 8),
                        iterations);
        time_all_reduce("full gradient (pretrain)", num_parameters(config), iterations);
        distributed_finalize();
        return 0;
    } catch (const Error& error) {
        return distributed_fail(error.what());
    }
}
