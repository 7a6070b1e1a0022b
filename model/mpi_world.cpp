// The MPI calls of data parallelism (model/mpi_world.h), through MPI's C API.
#include "model/mpi_world.h"

// the C API only: OpenMPI's and MPICH's deprecated C++ bindings would need their own library
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <string>

#include "data/file_io.h"

namespace {

void check(int status, const std::string& call) {
    if (status == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING] = {0};
    int length = 0;
    MPI_Error_string(status, text, &length);
    fail(call + " failed: " + text);
}

// MPI counts are int: the sum goes in chunks of at most INT_MAX elements
template <typename T>
void sum_in_chunks(T* values, size_t count, MPI_Datatype type, bool is_root, const char* call) {
    for (size_t first = 0; first < count; first += size_t(INT_MAX)) {
        const int chunk = int(std::min(count - first, size_t(INT_MAX)));
        T* chunk_values = values + first;
        check(MPI_Reduce(is_root ? MPI_IN_PLACE : chunk_values, chunk_values, chunk, type, MPI_SUM, 0, MPI_COMM_WORLD),
              std::string(call) + ", in MPI_Reduce");
        check(MPI_Bcast(chunk_values, chunk, type, 0, MPI_COMM_WORLD), std::string(call) + ", in MPI_Bcast");
    }
}

}  // namespace

namespace mpi_world {

bool available() { return true; }

void init(int* size, int* rank) {
    check(MPI_Init(nullptr, nullptr), "MPI_Init");
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_size(MPI_COMM_WORLD, size), "MPI_Comm_size");
    check(MPI_Comm_rank(MPI_COMM_WORLD, rank), "MPI_Comm_rank");
}

int node_local_rank(int rank) {
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
    int local_rank = 0;
    check(MPI_Comm_rank(node, &local_rank), "MPI_Comm_rank (node)");
    check(MPI_Comm_free(&node), "MPI_Comm_free");
    return local_rank;
}

void finalize() { check(MPI_Finalize(), "MPI_Finalize"); }

void abort() { MPI_Abort(MPI_COMM_WORLD, 1); }

void sum_to_all(float* values, size_t count, bool is_root, const char* call) {
    sum_in_chunks(values, count, MPI_FLOAT, is_root, call);
}
void sum_to_all(double* values, size_t count, bool is_root, const char* call) {
    sum_in_chunks(values, count, MPI_DOUBLE, is_root, call);
}

void broadcast(void* bytes, size_t count, int root, const char* call) {
    if (count > size_t(INT_MAX)) fail(std::string(call) + ": too many bytes");
    check(MPI_Bcast(bytes, int(count), MPI_BYTE, root, MPI_COMM_WORLD), call);
}

void barrier(const char* call) { check(MPI_Barrier(MPI_COMM_WORLD), call); }

void all_gather(unsigned long long value, unsigned long long* out, const char* call) {
    check(MPI_Allgather(&value, 1, MPI_UNSIGNED_LONG_LONG, out, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD), call);
}

}  // namespace mpi_world
