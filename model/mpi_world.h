// The MPI calls of data parallelism (model/distributed.cpp), behind one seam, so that clora also builds where no
// MPI is installed (a machine that reaches no package registry, a laptop): model/mpi_world.cpp calls MPI;
// model/mpi_world_absent.cpp, which the Makefile builds instead when it finds no mpicxx (or with MPI=0), refuses
// a launched run with a clear message. An unlaunched run never calls any of these.
// Every call fails (fail(), data/file_io.h) naming `call` and MPI's error text when MPI reports one.
#pragma once
#include <cstddef>

namespace mpi_world {

// Whether this build has MPI; without it a run under a launcher stops at distributed_init.
bool available();
// MPI_Init, errors returned (not fatal) from then on, and this process's (size, rank) in MPI's world.
void init(int* size, int* rank);
// The rank among the processes that share this node's memory (MPI_COMM_TYPE_SHARED).
int node_local_rank(int rank);
void finalize();
// MPI_Abort of the whole job (does not return under a launcher).
void abort();
// values (count) = their sum over every rank, formed once on rank 0 and broadcast, so every rank gets the same bits.
void sum_to_all(float* values, size_t count, bool is_root, const char* call);
void sum_to_all(double* values, size_t count, bool is_root, const char* call);
void broadcast(void* bytes, size_t count, int root, const char* call);
void barrier(const char* call);
// out (world size) = every rank's value
void all_gather(unsigned long long value, unsigned long long* out, const char* call);

}  // namespace mpi_world
