#include "model/distributed.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "data/file_io.h"
#include "model/mpi_world.h"

namespace {

Distributed state;
bool mpi_initialised = false;

// ---- the launcher's environment ----

// The value of an integer environment variable, or -1 when unset; fails on a malformed one.
long environment_integer(const char* name) {
    const char* text = std::getenv(name);
    if (!text) return -1;
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 0)
        fail(std::string("launcher environment: ") + name + "='" + text + "' is not a non-negative integer");
    return value;
}

struct LauncherEnvironment {
    const char* name;
    const char *size, *rank, *local_rank;
};
const LauncherEnvironment LAUNCHERS[] = {
    {"mpirun", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"},
    {"mpiexec (PMI)", "PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"},
    {"srun", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_LOCALID"},
};

// ---- the watchdog ----

std::atomic<long long> deadline_ns{0};       // steady-clock time at which the current collective times out; 0: none
std::atomic<const char*> waiting_call{nullptr};
double timeout_seconds = 600;

long long now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void watchdog_loop() {
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const long long deadline = deadline_ns.load();
        if (deadline == 0 || now_ns() < deadline) continue;
        const char* call = waiting_call.load();
        std::fprintf(stderr,
                     "error: rank %d: %s did not complete within %g s: another rank died, hangs or cannot "
                     "rendezvous (bound: CLORA_COLLECTIVE_TIMEOUT seconds)\n",
                     state.rank, call ? call : "a collective", timeout_seconds);
        std::fflush(stderr);
        std::_Exit(1);  // no MPI call from this thread; the launcher ends the other ranks when this one exits
    }
}

void read_timeout() {
    const char* text = std::getenv("CLORA_COLLECTIVE_TIMEOUT");
    if (!text) return;
    char* end = nullptr;
    double value = std::strtod(text, &end);
    if (*text == '\0' || *end != '\0' || !(value > 0))
        fail(std::string("CLORA_COLLECTIVE_TIMEOUT='") + text + "': expected a positive number of seconds");
    timeout_seconds = value;
}

// ---- fault injection (tests) ----

bool fault_checked = false;
void inject_fault_once() {
    if (fault_checked || !mpi_initialised) return;  // after the rendezvous only
    fault_checked = true;
    const char* text = std::getenv("CLORA_TEST_FAULT");
    if (!text) return;
    int rank = -1;
    char kind[16] = {0};
    if (std::sscanf(text, "%d:%15s", &rank, kind) != 2 || (std::string(kind) != "exit" && std::string(kind) != "hang"))
        fail(std::string("CLORA_TEST_FAULT='") + text + "': expected <rank>:exit or <rank>:hang");
    if (rank != state.rank) return;
    std::fprintf(stderr, "rank %d: CLORA_TEST_FAULT: %s\n", state.rank, kind);
    std::fflush(stderr);
    if (std::string(kind) == "exit") std::_Exit(3);
    for (;;) pause();
}

void check_world(const std::string& launcher, int mpi_size, int mpi_rank) {
    if (mpi_size != state.world_size || mpi_rank != state.rank)
        fail("MPI_Init: " + launcher + " announced rank " + std::to_string(state.rank) + " of " +
             std::to_string(state.world_size) + ", MPI found rank " + std::to_string(mpi_rank) + " of " +
             std::to_string(mpi_size) + " (under Slurm, launch with srun --mpi=pmix)");
}

}  // namespace

CollectiveDeadline::CollectiveDeadline(const char* call) {
    inject_fault_once();
    waiting_call.store(call);
    deadline_ns.store(now_ns() + (long long)(timeout_seconds * 1e9));
}
CollectiveDeadline::~CollectiveDeadline() {
    deadline_ns.store(0);
    waiting_call.store(nullptr);
}

const Distributed& distributed() { return state; }

void distributed_init() {
    state = Distributed{};
    state.launcher = "none";
    for (const LauncherEnvironment& launcher : LAUNCHERS) {
        const long size = environment_integer(launcher.size);
        if (size < 0) continue;
        const long rank = environment_integer(launcher.rank), local = environment_integer(launcher.local_rank);
        if (size < 1 || rank < 0 || rank >= size)
            fail(std::string("launcher environment (") + launcher.name + "): rank " + std::to_string(rank) +
                 " of world size " + std::to_string(size) + " (" + launcher.rank + ", " + launcher.size + ")");
        state.launched = true;
        state.launcher = launcher.name;
        state.world_size = int(size);
        state.rank = int(rank);
        state.local_rank = int(std::max(local, 0L));
        break;
    }
    if (!state.launched) return;
    if (!mpi_world::available())
        fail("a run under " + state.launcher + " needs MPI, and this clora was built without it (no mpicxx was found, "
             "or MPI=0): install OpenMPI (libopenmpi-dev, openmpi-bin) and rebuild");
    read_timeout();
    std::thread(watchdog_loop).detach();
    int size = 0, rank = 0;
    {
        CollectiveDeadline bound("MPI_Init (the rendezvous of every rank)");
        mpi_world::init(&size, &rank);
    }
    mpi_initialised = true;
    check_world(state.launcher, size, rank);
    // no local rank in the environment: the rank among the processes that share this node's memory
    if (environment_integer(LAUNCHERS[0].local_rank) < 0 && environment_integer(LAUNCHERS[1].local_rank) < 0 &&
        environment_integer(LAUNCHERS[2].local_rank) < 0)
        state.local_rank = mpi_world::node_local_rank(rank);
}

void distributed_finalize() {
    if (!mpi_initialised) return;
    barrier("MPI_Barrier (the end of the run)");
    mpi_world::finalize();
    mpi_initialised = false;
}

int distributed_fail(const std::string& message) {
    if (!state.launched) {
        std::fprintf(stderr, "error: %s\n", message.c_str());
        return 1;
    }
    std::fprintf(stderr, "error: rank %d: %s\n", state.rank, message.c_str());
    std::fflush(stderr);
    // mpirun forwards a rank's output asynchronously, and MPI_Abort kills every rank at once: without a pause the
    // error line was lost about one run in four (OpenMPI 4.1, test/test_distributed.cpp "bad input under mpirun").
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (mpi_initialised) mpi_world::abort();
    std::_Exit(1);
}

RankSlice rank_slice(size_t total, int rank, int world_size) {
    const size_t size = size_t(world_size), r = size_t(rank);
    const size_t base = total / size, extra = total % size;
    return {r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

namespace {
// The sum is formed once, on rank 0, and broadcast (mpi_world::sum_to_all): every rank gets the very same bits, which
// MPI_Allreduce does not promise (its algorithms may add in a different order on each rank), and the optimizer steps
// must stay identical on every rank.
template <typename T>
void all_reduce_sum(T* values, size_t count, const char* what) {
    if (!state.launched) return;
    const std::string call = std::string("MPI_Reduce + MPI_Bcast (") + what + ")";
    CollectiveDeadline bound(call.c_str());
    mpi_world::sum_to_all(values, count, state.rank == 0, call.c_str());
}
}  // namespace

void all_reduce_sum_host(double* values, size_t count, const char* what) { all_reduce_sum(values, count, what); }
void all_reduce_sum_host(float* values, size_t count, const char* what) { all_reduce_sum(values, count, what); }

void broadcast_bytes_host(void* bytes, size_t count, int root, const char* what) {
    if (!state.launched) return;
    const std::string call = std::string("MPI_Bcast (") + what + ")";
    CollectiveDeadline bound(call.c_str());
    mpi_world::broadcast(bytes, count, root, call.c_str());
}

void barrier(const char* what) {
    if (!state.launched) return;
    CollectiveDeadline bound(what);
    mpi_world::barrier(what);
}

void check_same_on_all_ranks(unsigned long long value, const char* what) {
    if (!state.launched) return;
    std::vector<unsigned long long> values(size_t(state.world_size));
    const std::string call = std::string("MPI_Allgather (") + what + ")";
    {
        CollectiveDeadline bound(call.c_str());
        mpi_world::all_gather(value, values.data(), call.c_str());
    }
    std::string differing;
    for (int r = 0; r < state.world_size; r++)
        if (values[size_t(r)] != values[0]) differing += " " + std::to_string(r);
    if (!differing.empty())
        fail(std::string(what) + " differ between ranks: ranks" + differing + " disagree with rank 0");
}
