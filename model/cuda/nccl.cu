#include "model/cuda/nccl.h"

#include <nccl.h>

#include <string>

#include "model/cuda/cuda_check.h"
#include "model/distributed.h"

namespace {

void nccl_check(ncclResult_t status, const char* call, const char* file, int line) {
    if (status != ncclSuccess)
        fail(std::string("NCCL error: ") + ncclGetErrorString(status) + " in " + call + " at " + file + ":" +
             std::to_string(line));
}
#define NCCL_CHECK(call) nccl_check((call), #call, __FILE__, __LINE__)

// The communicator over every rank, one GPU each: created at the first sum (every rank reaches it together,
// since every rank runs the same steps), destroyed at exit.
struct Communicator {
    ncclComm_t comm = nullptr;
    Communicator() {
        const Distributed& d = distributed();
        ncclUniqueId id;
        if (d.rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
        broadcast_bytes_host(&id, sizeof(id), 0, "the NCCL unique id");
        CollectiveDeadline bound("ncclCommInitRank");
        NCCL_CHECK(ncclCommInitRank(&comm, d.world_size, id, d.rank));
    }
    ~Communicator() {
        if (comm) ncclCommDestroy(comm);
    }
};

ncclComm_t communicator() {
    static Communicator instance;
    return instance.comm;
}

}  // namespace

namespace cuda {

void use_device(int index) { CUDA_CHECK(cudaSetDevice(index)); }

void all_reduce_sum(float* data, size_t count) {
    if (!distributed().launched || count == 0) return;
    ncclComm_t comm = communicator();
    CollectiveDeadline bound("ncclAllReduce (gradients)");
    NCCL_CHECK(ncclAllReduce(data, data, count, ncclFloat, ncclSum, comm, /*stream=*/0));
    CUDA_CHECK(cudaStreamSynchronize(0));  // a dead peer blocks here: inside the watchdog's bound
}

}  // namespace cuda
