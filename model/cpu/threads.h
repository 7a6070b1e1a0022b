// CPU threads: the hot CPU kernels run their rows (or heads, or chunks) in parallel with OpenMP, and Eigen's matrix
// products split their output blocks over the same threads. Each parallel loop gives every thread whole rows,
// computed exactly as one thread computes them, so only the matrix products' rounding can depend on the thread
// count; for a fixed count every run gives the same bits.
//
// The count: --threads N of the commands (set_cpu_threads), else OMP_NUM_THREADS, else every core. A build without
// OpenMP (make OPENMP=0) runs every kernel on one thread.
#pragma once
#include <cstddef>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cpu {

// Work below these sizes runs on one thread: a team of threads costs more than it saves there (the tiny models of
// the tests and of the synthetic benchmark ran slower on two threads than on one with thresholds 8x lower).
// Element-wise and row loops: elements touched.
constexpr size_t parallel_min_elements = size_t(1) << 18;
// Matrix products (Eigen's, model/cpu/eigen_views.h) and attention: multiply-adds.
constexpr double parallel_min_multiply_adds = double(1 << 24);

// `#pragma omp parallel for` over the loop that follows, when `condition` holds
#define CPU_PRAGMA(text) _Pragma(#text)
#ifdef _OPENMP
#define CPU_PARALLEL_FOR_IF(condition) CPU_PRAGMA(omp parallel for schedule(static) if (condition))
#else
#define CPU_PARALLEL_FOR_IF(condition)
#endif

// The number of threads the CPU kernels use.
inline int cpu_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Sets it (n >= 1) for OpenMP's loops and Eigen's products alike.
void set_cpu_threads(int n);

// f(first, count) over [0, N) in one contiguous chunk per thread, each chunk starting at a multiple of `align`
// elements (so that vectorised code splits its work the same way as on one thread); one chunk when N is small.
template <typename Function>
void parallel_chunks(size_t N, size_t align, Function f) {
    const int threads = N >= parallel_min_elements ? cpu_threads() : 1;
    if (threads <= 1) return f(size_t(0), N);
    const size_t chunk = (N / size_t(threads) + align - 1) / align * align;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#endif
    for (int t = 0; t < threads; t++) {
        const size_t first = size_t(t) * chunk;
        if (first < N) f(first, first + chunk < N ? chunk : N - first);
    }
}

}  // namespace cpu
