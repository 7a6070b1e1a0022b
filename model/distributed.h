// Data parallelism across processes: who this process is (rank, world size, local rank on its node), set up
// from the launcher, and the collectives the training loops need. MPI (OpenMPI, linked normally) finds the
// ranks; the gradient sums of the CUDA backend go through NCCL (model/cuda/nccl.cu), those of the CPU backend
// through MPI, so the CPU path tests the same orchestration without a GPU.
//
// Launchers recognised (their environment, read before anything else):
//   mpirun / mpiexec (OpenMPI)   OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_LOCAL_RANK
//   mpiexec (MPICH, Intel MPI)   PMI_SIZE, PMI_RANK, MPI_LOCALRANKID
//   srun (Slurm, --mpi=pmix)     SLURM_STEP_NUM_TASKS, SLURM_PROCID, SLURM_LOCALID (only srun sets the step's
//                                task count, so a batch script's own shell, outside srun, runs as one process)
// With none of these set, the process runs alone: MPI_Init is never called, NCCL never initialised, and every
// collective below is a no-op (sums of one rank). Under a launcher, even with a single rank, the collectives
// run (the 1-rank NCCL check in dev/gpu_check.sh relies on it).
//
// libmpi is linked, not dlopen'ed: OpenMPI's handles (MPI_COMM_WORLD, MPI_DOUBLE) are addresses of library
// globals, which dlopen would have to look up by implementation-specific names; linking is one dependency of
// the build (dev/setup.sh installs libopenmpi-dev), and an unlaunched run only loads the library. Every MPI call
// goes through model/mpi_world.h; where no MPI is installed the Makefile builds without it (MPI=0), and a run under
// a launcher then stops at distributed_init with a clear error.
//
// Every collective is bounded in time: a watchdog thread ends the process with "error: rank R: <call> did not
// complete within S s ..." when one waits longer than CLORA_COLLECTIVE_TIMEOUT seconds (default 600; a rank that
// died, hangs, or never reached the rendezvous), and the launcher then ends the other ranks. An Error on any rank
// is printed with its rank and ends the whole job (MPI_Abort), never leaving the others waiting.
//
// Fault injection for the tests: CLORA_TEST_FAULT="<rank>:exit" makes that rank exit (status 3, without
// MPI_Finalize) at its first collective after the rendezvous; "<rank>:hang" makes it sleep there forever.
#pragma once
#include <cstddef>
#include <string>

struct Distributed {
    bool launched = false;  // started by a launcher: MPI is initialised and the collectives run
    int rank = 0;           // 0 .. world_size - 1; rank 0 alone writes logs, checkpoints and results
    int world_size = 1;
    int local_rank = 0;     // the rank among the processes of its node: the GPU it takes
    std::string launcher;   // "mpirun", "mpiexec (PMI)", "srun" or "none"
};

// Reads the launcher's environment and, under one, initialises MPI (MPI_Init, bounded by the watchdog) and
// checks that MPI's world is the one the launcher announced. Call once, first thing in main. Fails with a
// clear message on a malformed environment or a world-size mismatch (srun without --mpi=pmix, say).
void distributed_init();
// MPI_Finalize under a launcher (after a barrier, so no rank leaves while another still sums); nothing otherwise.
void distributed_finalize();
// Ends every rank after an error on this one: prints "error: rank R: message" and calls MPI_Abort under a
// launcher; plain "error: message" otherwise. Returns the exit status to use (1) when not launched.
int distributed_fail(const std::string& message);

const Distributed& distributed();
inline bool is_root_rank() { return distributed().rank == 0; }

// This rank's share [first, first + count) of `total` items split in world_size contiguous parts, the first
// (total % world_size) parts one larger: the slices of a global batch's rows.
struct RankSlice {
    size_t first, count;
};
RankSlice rank_slice(size_t total, int rank, int world_size);

// Host collectives over MPI (no-ops in a single process). `what` names the values in error messages.
void all_reduce_sum_host(double* values, size_t count, const char* what);
void all_reduce_sum_host(float* values, size_t count, const char* what);
void broadcast_bytes_host(void* bytes, size_t count, int root, const char* what);
void barrier(const char* what);
// Fails on every rank, naming the ranks, unless `value` is the same on all of them (a checksum of the
// parameters: the optimizer steps stayed identical).
void check_same_on_all_ranks(unsigned long long value, const char* what);

// The watchdog's bound around one blocking collective: constructed before the call, destroyed after it.
// Exported for the NCCL path (model/cuda/nccl.cu), which waits on the stream inside one.
class CollectiveDeadline {
public:
    explicit CollectiveDeadline(const char* call);
    ~CollectiveDeadline();
    CollectiveDeadline(const CollectiveDeadline&) = delete;
    CollectiveDeadline& operator=(const CollectiveDeadline&) = delete;
};
