// A build without MPI (model/mpi_world.h): the Makefile compiles this file instead of model/mpi_world.cpp when it
// finds no mpicxx, or with MPI=0. A run alone never reaches these calls; a run under a launcher stops at
// distributed_init (model/distributed.cpp), which asks available() first.
#include <string>

#include "data/file_io.h"
#include "model/mpi_world.h"

namespace {
[[noreturn]] void no_mpi(const char* call) {
    fail(std::string(call) + ": this clora was built without MPI (no mpicxx was found, or MPI=0); install OpenMPI "
         "(libopenmpi-dev, openmpi-bin) and rebuild to run under a launcher");
}
}  // namespace

namespace mpi_world {
bool available() { return false; }
void init(int*, int*) { no_mpi("MPI_Init"); }
int node_local_rank(int) { no_mpi("MPI_Comm_split_type"); }
void finalize() { no_mpi("MPI_Finalize"); }
void abort() {}
void sum_to_all(float*, size_t, bool, const char* call) { no_mpi(call); }
void sum_to_all(double*, size_t, bool, const char* call) { no_mpi(call); }
void broadcast(void*, size_t, int, const char* call) { no_mpi(call); }
void barrier(const char* call) { no_mpi(call); }
void all_gather(unsigned long long, unsigned long long*, const char* call) { no_mpi(call); }
}  // namespace mpi_world
