// The CUDA side of data parallelism (model/cuda/nccl.cu): each rank's GPU, and NCCL sums of device buffers.
// The ranks are those of model/distributed.h; NCCL's communicator is created at the first sum, from a unique
// id that rank 0 makes and MPI broadcasts. In a process started without a launcher NCCL is never touched.
#pragma once
#include <cstddef>

namespace cuda {
// Makes GPU `index` current for this process (before anything is allocated on it).
void use_device(int index);
// data (count) on the device: the element-wise sum over every rank, in place on every rank (ncclAllReduce on
// the default stream, waited for within the collective timeout). A no-op in a process without a launcher.
void all_reduce_sum(float* data, size_t count);
}  // namespace cuda
