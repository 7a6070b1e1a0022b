#include "model/cpu/threads.h"

namespace cpu {

// Eigen's products read the count when a ThreadedProduct turns them on (model/cpu/eigen_views.h).
void set_cpu_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

}  // namespace cpu
