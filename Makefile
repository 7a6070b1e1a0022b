# clora: build, test, run. `make` builds ./train; `make test` builds and runs every test.
# GPU architectures are pinned, never auto-detected: GPU_ARCHS=90 (H100/H200) by default,
# e.g. `make GPU_ARCHS="80 90"` for A100 and H100.

# Build in parallel on every core unless -j is given.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc)
endif

NVCC ?= nvcc
CXX ?= g++
GPU_ARCHS ?= 90
GENCODE := $(foreach arch,$(GPU_ARCHS),-gencode arch=compute_$(arch),code=sm_$(arch))
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
EIGEN_INCLUDE ?= /usr/include/eigen3

# The CPU reference runs 1.6x faster with AVX2 and FMA (x86-64-v3: any x86 CPU since 2013); CPU_ARCH=x86-64
# builds for older ones, CPU_ARCH=native for this one.
CPU_ARCH ?= x86-64-v3
# MPI (OpenMPI from Debian, dev/setup.sh) finds the ranks of a data-parallel run; NCCL (with the CUDA toolkit)
# sums their GPU gradients. Both are linked always; a run without a launcher initialises neither
# (model/distributed.h).
MPI_INCLUDES ?= $(shell mpicxx --showme:incdirs 2>/dev/null)
MPI_LIBDIRS ?= $(shell mpicxx --showme:libdirs 2>/dev/null)
CPPFLAGS := -I. -isystem $(EIGEN_INCLUDE) $(foreach dir,$(MPI_INCLUDES),-isystem $(dir))
CXXFLAGS ?= -O3 -march=$(CPU_ARCH) -g
CXXFLAGS += -std=c++17 -Wall -Wextra -MMD -MP
NVCCFLAGS ?= -O2 -g
NVCCFLAGS += -std=c++17 $(GENCODE) -MMD -MP
LDFLAGS := -L$(CUDA_HOME)/lib64 -Xlinker -rpath=$(CUDA_HOME)/lib64 $(foreach dir,$(MPI_LIBDIRS),-L$(dir))
LDLIBS := -lcublas -lcudart -lnccl -lmpi -lpcre2-8

BUILD := build
LIB_SOURCES := $(wildcard data/*.cpp model/*.cpp model/cpu/*.cpp lora/*.cpp)
CUDA_SOURCES := $(wildcard model/cuda/*.cu)
TEST_SOURCES := $(wildcard test/*.cpp)
LIB_OBJECTS := $(LIB_SOURCES:%.cpp=$(BUILD)/%.o) $(CUDA_SOURCES:%.cu=$(BUILD)/%.o)
TEST_OBJECTS := $(TEST_SOURCES:%.cpp=$(BUILD)/%.o)
LAB_SOURCES := $(wildcard dev/cuda/*.cu)
LAB_BINARIES := $(LAB_SOURCES:dev/cuda/%.cu=$(BUILD)/lab/%)

.PHONY: all test lab clean
all: train

train: $(BUILD)/train.o $(LIB_OBJECTS)
	$(NVCC) $(GENCODE) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/test_runner: $(TEST_OBJECTS) $(LIB_OBJECTS)
	$(NVCC) $(GENCODE) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The test runner prints one closing line: "N passed, N failed" (", N skipped" when some skipped).
# Tests that run the CLI use ./train, so it is built first, and the benchmark test build/bench/train_step.
test: train $(BUILD)/test_runner $(BUILD)/bench/train_step
	@./$(BUILD)/test_runner

# The kernel lab: one standalone program per kernel family (reference, versions, check, timing). Each includes its
# family's model/cuda/*.cu (the version that ships) and links what those use: fail(), the cuBLAS handle and the
# device memory calls. build/lab holds only the programs (dev/gpu_check.sh runs each file there); their
# dependency files go to build/dev/cuda.
LAB_OBJECTS := $(BUILD)/data/file_io.o $(BUILD)/model/cuda/matmul.o $(BUILD)/model/cuda/memory.o
BENCH_BINARIES := $(BUILD)/bench/allreduce $(BUILD)/bench/train_step
lab: $(LAB_BINARIES) $(BENCH_BINARIES)

# Peer and scaling benchmarks (dev/bench): whole programs over the library, built with the lab, run on a GPU.
# (dev/bench/*.cu by nvcc, dev/bench/*.cpp by g++; their objects are kept, not removed as intermediates.)
.PRECIOUS: $(BUILD)/dev/bench/%.o
$(BUILD)/bench/%: $(BUILD)/dev/bench/%.o $(LIB_OBJECTS)
	@mkdir -p $(dir $@)
	$(NVCC) $(GENCODE) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/lab/%: dev/cuda/%.cu $(LAB_OBJECTS)
	@mkdir -p $(dir $@) $(BUILD)/dev/cuda
	$(NVCC) -std=c++17 -O3 $(GENCODE) -I. -MMD -MP -MF $(BUILD)/dev/cuda/$*.d $< $(LAB_OBJECTS) -o $@ $(LDFLAGS) \
	    -lcublas

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(NVCCFLAGS) -c $< -o $@

clean:
	rm -rf $(BUILD) train

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
