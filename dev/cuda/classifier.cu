// Kernel lab: the fused classifier (softmax + cross-entropy + dlogits in one pass over each row of logits).
// Build and run (from the repository root, on a GPU host):
//   make lab && ./build/lab/classifier        every version;   ./build/lab/classifier 2   version 2 only
// Each version is checked against the CPU reference below at small and odd shapes, then timed at GPT-2 124M shapes
// (N = B*T = 8192 rows, V = 50257, Vp = 50304). Exits non-zero when a check fails. The last line sums up the
// shipped version (2).
//
// The math, for row i of logits z (N,Vp), of which only the first V columns are real tokens:
//   loss_i = log(sum_{v<V} exp(z_v)) - z_target = log(sum_v exp(z_v - max)) + max - z_target
//   dlogits_i,v = (softmax(z)_v - [v == target]) * weight_i / weight_sum   (v < V; 0 for V <= v < Vp, and
//                 scale 0 when weight_sum <= 0)
// The probabilities are never stored. losses or dlogits may be null (eval: losses only).
// Versions:
//   1  naive: one thread per row, three serial passes (max, sum, write).
//   2  one block per row: each thread keeps a running (max, sum) over its columns (online softmax), merged across
//      the block in a fixed order; a second pass writes dlogits; float4 loads and stores when Vp % 4 == 0.
//      THIS IS cuda::fused_classifier, model/cuda/classifier.cu, included below (not copied).
#include "dev/cuda/lab_common.h"
#include "model/cuda/classifier.cu"

// ---------------------------------------------------------------------------------------------------------------
// CPU reference: plain loops, double accumulators. losses (N) or null; dlogits (N,Vp) or null.

void classifier_cpu(float* losses, float* dlogits, const float* logits, const int* targets, const float* weights,
                    double weight_sum, int N, int V, int Vp) {
    for (int i = 0; i < N; i++) {
        const float* z = logits + size_t(i) * Vp;
        double max_logit = z[0], sum = 0;
        for (int v = 1; v < V; v++) max_logit = std::max(max_logit, double(z[v]));
        for (int v = 0; v < V; v++) sum += std::exp(z[v] - max_logit);
        if (losses) losses[i] = float(std::log(sum) + max_logit - z[targets[i]]);
        if (!dlogits) continue;
        double scale = weight_sum > 0 ? weights[i] / weight_sum : 0.0;
        for (int v = 0; v < Vp; v++)
            dlogits[size_t(i) * Vp + v] =
                v < V ? float((std::exp(z[v] - max_logit) / sum - (v == targets[i] ? 1.0 : 0.0)) * scale) : 0.0f;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Version 1: naive, one thread per row. (Version 2 is model/cuda/classifier.cu's.)

__global__ void classifier_naive_kernel(float* losses, float* dlogits, const float* logits, const int* targets,
                                        const float* weights, double weight_sum, int N, int V, int Vp) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) return;
    const float* z = logits + size_t(i) * Vp;
    float max_logit = z[0], sum = 0.0f;
    for (int v = 1; v < V; v++) max_logit = fmaxf(max_logit, z[v]);
    for (int v = 0; v < V; v++) sum += expf(z[v] - max_logit);
    if (losses) losses[i] = logf(sum) + max_logit - z[targets[i]];
    if (!dlogits) return;
    float scale = weight_sum > 0.0 ? float(weights[i] / weight_sum) : 0.0f;
    for (int v = 0; v < Vp; v++)
        dlogits[size_t(i) * Vp + v] =
            v < V ? (expf(z[v] - max_logit) / sum - (v == targets[i] ? 1.0f : 0.0f)) * scale : 0.0f;
}

void fused_classifier(int version, float* losses, float* dlogits, const float* logits, const int* targets,
                      const float* weights, double weight_sum, int N, int V, int Vp) {
    if (version == 2) return cuda::fused_classifier(losses, dlogits, logits, targets, weights, weight_sum, N, V, Vp);
    classifier_naive_kernel<<<ceil_div(N, 128), 128>>>(losses, dlogits, logits, targets, weights, weight_sum, N, V, Vp);
    CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------------------------
// Check and timing.

// Random logits, targets spread over [0, V) (the last row's target the last real column), weights with zeros.
struct Inputs {
    std::vector<float> logits, weights;
    std::vector<int> targets;
    double weight_sum = 0;
};

Inputs make_inputs(int N, int V, int Vp) {
    Inputs in;
    in.logits = random_floats(size_t(N) * Vp, 1, -4, 4);
    in.weights = random_floats(N, 2, 0, 2);
    in.targets.resize(N);
    for (int i = 0; i < N; i++) {
        in.targets[i] = i == N - 1 ? V - 1 : int((uint64_t(i) * 7919 + 3) % V);
        if (i % 3 == 1) in.weights[i] = 0.0f;  // a masked position
        in.weight_sum += in.weights[i];
    }
    return in;
}

// Runs one version at one shape against the CPU reference, with and without dlogits; prints and returns whether
// it passed.
bool check(int version, int N, int V, int Vp) {
    const double tolerance = 1e-5;  // relative error ||gpu - cpu|| / ||cpu||, as the project's tests
    Inputs in = make_inputs(N, V, Vp);
    std::vector<float> losses(N), dlogits(in.logits.size());
    classifier_cpu(losses.data(), dlogits.data(), in.logits.data(), in.targets.data(), in.weights.data(),
                   in.weight_sum, N, V, Vp);
    float *d_logits = to_device(in.logits), *d_weights = to_device(in.weights);
    int* d_targets = to_device(in.targets);
    float* d_losses = to_device(std::vector<float>(N, NAN));  // poisoned: every element must be written
    float* d_dlogits = to_device(std::vector<float>(dlogits.size(), NAN));
    fused_classifier(version, d_losses, d_dlogits, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
    double error_losses = relative_error(download(d_losses, N), losses);
    double error_dlogits = relative_error(download(d_dlogits, dlogits.size()), dlogits);
    upload(d_losses, std::vector<float>(N, NAN));
    fused_classifier(version, d_losses, nullptr, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
    double error_losses_only = relative_error(download(d_losses, N), losses);
    bool ok = print_result(
        format("version %d  N=%d V=%d Vp=%d", version, N, V, Vp),
        std::max({error_losses, error_dlogits, error_losses_only}), tolerance, -1.0f, 0.0,
        format("(losses %.2e, dlogits %.2e, losses only %.2e)", error_losses, error_dlogits, error_losses_only));
    CHECK_CUDA(cudaFree(d_targets));
    for (float* buffer : {d_logits, d_weights, d_losses, d_dlogits}) CHECK_CUDA(cudaFree(buffer));
    return ok;
}

int main(int argc, char** argv) {
    const std::vector<int> versions = versions_to_run(argc, argv, 2);
    print_device();

    bool ok = true;
    struct Shape {
        int N, V, Vp;
    } shapes[] = {{1, 1, 1}, {5, 67, 128}, {6, 67, 67}, {4, 129, 130}, {64, 50257, 50304}};
    for (int version : versions)
        for (const Shape& s : shapes) ok &= check(version, s.N, s.V, s.Vp);

    // timing at GPT-2 124M shapes. Bandwidth counts the least traffic the kernel must cause: logits read once
    // (N*Vp floats), plus dlogits written once when it is computed.
    const int N = 8192, V = 50257, Vp = 50304;
    Inputs in = make_inputs(N, V, Vp);
    float *d_logits = to_device(in.logits), *d_weights = to_device(in.weights);
    int* d_targets = to_device(in.targets);
    float *d_losses, *d_dlogits;
    CHECK_CUDA(cudaMalloc(&d_losses, N * sizeof(float)));
    CHECK_CUDA(cudaMalloc(&d_dlogits, in.logits.size() * sizeof(float)));
    const double row_bytes = double(N) * Vp * sizeof(float);
    std::string shipped = "version 2 not run";
    std::printf("timing at N=%d V=%d Vp=%d\n", N, V, Vp);
    for (int version : versions) {
        float both_ms = time_ms([&] {
            fused_classifier(version, d_losses, d_dlogits, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
        });
        float losses_ms = time_ms([&] {
            fused_classifier(version, d_losses, nullptr, d_logits, d_targets, d_weights, in.weight_sum, N, V, Vp);
        });
        std::printf("version %d  losses + dlogits %8.3f ms %7.1f GB/s   losses only %8.3f ms %7.1f GB/s\n", version,
                    both_ms, 2 * row_bytes / both_ms * 1e-6, losses_ms, row_bytes / losses_ms * 1e-6);
        // the training step's call (losses + dlogits) in full; the evaluation's (losses only) by its time
        if (version == 2) shipped = timing("train", both_ms, 2 * row_bytes) + format(" | eval %.3f ms", losses_ms);
    }
    CHECK_CUDA(cudaFree(d_targets));
    for (float* buffer : {d_logits, d_weights, d_losses, d_dlogits}) CHECK_CUDA(cudaFree(buffer));
    return finish("classifier", ok, shipped);
}
