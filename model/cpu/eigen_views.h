// Eigen views over the flat row-major buffers that every kernel takes: no copies, shapes explicit.
#pragma once
#include <Eigen/Dense>

#include "model/cpu/threads.h"

namespace cpu {

// Eigen blocks its matrix products by the CPU's cache sizes, which it reads at run time; the blocking decides how
// each sum of a product is split, so one binary rounds differently on machines with different caches (and the
// synthetic continual-learning tests, whose trajectories amplify rounding, then end differently). The sizes are
// pinned once, before main, to those Eigen reads on the project's 2-core Xeon machines (48 KiB, 2 MiB, 260 MiB),
// so the CPU reference gives the same bits on every machine that runs the same binary.
// Eigen's own threads are off by default (ThreadedProduct, below, turns them on for a large product).
inline const bool eigen_cache_sizes_pinned = [] {
    Eigen::setCpuCacheSizes(48 * 1024, 2 * 1024 * 1024, 260 * 1024 * 1024);
    Eigen::setNbThreads(1);
    return true;
}();

// Eigen's matrix products run on one thread (pinned above), except inside a ThreadedProduct: a product of at least
// parallel_min_multiply_adds then splits its output blocks over the CPU threads (model/cpu/threads.h). The linears'
// and the adapters' products ask for it (model/backend_cpu.h); the small ones elsewhere stay on one thread.
class ThreadedProduct {
public:
    explicit ThreadedProduct(double multiply_adds)
        : on_(multiply_adds >= parallel_min_multiply_adds && cpu_threads() > 1) {
        if (on_) Eigen::setNbThreads(cpu_threads());
    }
    ~ThreadedProduct() {
        if (on_) Eigen::setNbThreads(1);
    }
    ThreadedProduct(const ThreadedProduct&) = delete;
    ThreadedProduct& operator=(const ThreadedProduct&) = delete;

private:
    bool on_;
};

template <typename T>
using MatrixRM = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatrixView = Eigen::Map<MatrixRM<T>>;
template <typename T>
using ConstMatrixView = Eigen::Map<const MatrixRM<T>>;
template <typename T>
using VectorView = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstVectorView = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>;
// element-wise (array) views of a flat buffer
template <typename T>
using ArrayView = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstArrayView = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
// A (rows, cols) window whose rows are `stride` elements apart (one head of a packed qkv tensor, say).
template <typename T>
using StridedMatrixView = Eigen::Map<MatrixRM<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using ConstStridedMatrixView = Eigen::Map<const MatrixRM<T>, 0, Eigen::OuterStride<>>;

}  // namespace cpu
