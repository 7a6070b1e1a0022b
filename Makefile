# clora: build, test, run. `make` builds ./train; `make test` builds and runs every test.
# GPU architectures are pinned, never auto-detected: GPU_ARCHS=90 (H100/H200) by default,
# e.g. `make GPU_ARCHS="80 90"` for A100 and H100.

# `make` alone builds ./train (the rules below start with a generated header, which is not the goal)
.DEFAULT_GOAL := all

# Build in parallel on every core unless -j is given.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc)
endif

NVCC ?= nvcc
CXX ?= g++
# CPU_ONLY=1: a CPU-only ./train and test runner, built by g++ alone: no nvcc, CUDA, cuBLAS or NCCL (the CUDA
# backend is left out, model/backend.h; the GPU tests report themselves skipped). The default when nvcc is not
# found. Its objects go to build-cpu/, the GPU build's to build/.
CPU_ONLY ?= $(if $(shell command -v $(NVCC) 2>/dev/null),0,1)
ifneq ($(CPU_ONLY),1)
override CPU_ONLY := 0
endif
# GPU_ARCHS: machine code for each; the last one listed is also embedded as PTX, which the driver compiles for
# GPUs newer than any listed.
GPU_ARCHS ?= 90
GENCODE := $(foreach arch,$(GPU_ARCHS),-gencode arch=compute_$(arch),code=sm_$(arch)) \
    -gencode arch=compute_$(lastword $(GPU_ARCHS)),code=compute_$(lastword $(GPU_ARCHS))
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))

# The CPU backend is built for this machine's instructions and vector width (CPU_ARCH=native, as llm.c: AVX-512
# where there is AVX-512), tuned generically (CPU_TUNE=generic): GCC 12 tunes a Zen 4 EPYC as znver3, which made the
# training step 25% slower there than generic tuning of the very same instructions (dev/README.md). A binary for
# other machines: CPU_ARCH=x86-64-v3 (AVX2 and FMA, any x86 CPU since 2013) or x86-64. The CPU backend's rounding
# follows the instructions: one binary gives the same bits on every machine that runs it (model/cpu/eigen_views.h
# pins Eigen's cache sizes), two binaries built for different instructions may not.
CPU_ARCH ?= native
CPU_TUNE ?= generic
# OpenMP: the CPU kernels' threads (model/cpu/threads.h); OPENMP=0 builds them single-threaded.
OPENMP ?= 1
OPENMP_FLAG := $(if $(filter 1,$(OPENMP)),-fopenmp)
# DEPS=<prefix>: the Debian packages' headers and libraries unpacked into a folder (dev/gpu_deps.sh makes .deps/root)
# for a machine that has none of them installed and reaches no registry (the lent GPU machine); searched before the
# system's folders.
DEPS ?=
ifneq ($(DEPS),)
DEPS_ROOT := $(abspath $(DEPS))
DEPS_LIBDIR := $(DEPS_ROOT)/usr/lib/$(shell $(CXX) -print-multiarch)
EIGEN_INCLUDE := $(DEPS_ROOT)/usr/include/eigen3
endif
EIGEN_INCLUDE ?= /usr/include/eigen3
# NCCL_HOME / CUBLAS_HOME: a folder with include/ and lib/ holding NCCL / cuBLAS when the CUDA toolkit lacks them
# (a pip wheel's nvidia/... folder, say; dev/gpu_check.sh looks). Such a lib/ may hold only the versioned library
# (libnccl.so.2), which is then linked by its file name.
library_flag = $(if $(2),$(if $(wildcard $(2)/lib/lib$(1).so),-l$(1),-l:$(notdir $(firstword \
    $(wildcard $(2)/lib/lib$(1).so.*)))),-l$(1))
EXTRA_HOMES := $(NCCL_HOME) $(CUBLAS_HOME)
CUBLAS_LIB := $(call library_flag,cublas,$(CUBLAS_HOME))
# MPI (OpenMPI from Debian, dev/setup.sh) finds the ranks of a data-parallel run; NCCL (with the CUDA toolkit)
# sums their GPU gradients. A run without a launcher initialises neither (model/distributed.h). MPI=auto (the
# default) builds with MPI when mpicxx is found, MPI=0 without (model/mpi_world_absent.cpp: a launched run stops
# with an error; a single process runs as always).
MPI ?= auto
ifeq ($(MPI),auto)
override MPI := $(if $(shell command -v mpicxx 2>/dev/null),1,0)
endif
ifeq ($(MPI),1)
MPI_INCLUDES ?= $(shell mpicxx --showme:incdirs 2>/dev/null)
MPI_LIBDIRS ?= $(shell mpicxx --showme:libdirs 2>/dev/null)
MPI_LIB := -lmpi
MPI_SOURCE_LEFT_OUT := model/mpi_world_absent.cpp
else
MPI_SOURCE_LEFT_OUT := model/mpi_world.cpp
endif
CPPFLAGS := -I. -isystem $(EIGEN_INCLUDE) $(foreach dir,$(MPI_INCLUDES) $(DEPS_ROOT:%=%/usr/include),-isystem $(dir)) \
    $(foreach home,$(EXTRA_HOMES),-isystem $(home)/include)
CXXFLAGS ?= -O3 -march=$(CPU_ARCH) -mtune=$(CPU_TUNE) -g
# SANITIZE_BUILD=1 (make sanitize): AddressSanitizer + UBSan on every host object, at -O1
SANITIZE := -fsanitize=address -fsanitize=undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifeq ($(SANITIZE_BUILD),1)
CXXFLAGS := -O1 -g -march=$(CPU_ARCH) $(SANITIZE)
NVCCFLAGS := -O1 -g $(SANITIZE:%=-Xcompiler %)
SANITIZE_LINK := $(SANITIZE:%=-Xcompiler %)
endif
CXXFLAGS += -std=c++17 -Wall -Wextra -MMD -MP $(OPENMP_FLAG)
# GCC 12's own AVX-512 headers trip its -Wmaybe-uninitialized thousands of times inside Eigen (GCC bug 105593,
# fixed in GCC 13): off for GCC 12 only; at the sanitize build's -O1 they come as -Wuninitialized.
ifeq ($(shell $(CXX) -dumpversion 2>/dev/null | cut -d. -f1),12)
CXXFLAGS += -Wno-maybe-uninitialized $(if $(filter 1,$(SANITIZE_BUILD)),-Wno-uninitialized)
endif
NVCCFLAGS ?= -O2 -g
NVCCFLAGS += -std=c++17 $(GENCODE) -MMD -MP $(OPENMP_FLAG:%=-Xcompiler %)
ifeq ($(CPU_ONLY),1)
# g++ links everything
CPPFLAGS += -DCLORA_CPU_ONLY
LINK := $(CXX) $(filter-out -MMD -MP,$(CXXFLAGS))
runtime_dirs := $(DEPS_LIBDIR)
LDFLAGS := $(foreach dir,$(runtime_dirs),-L$(dir) -Wl,-rpath=$(dir)) $(foreach dir,$(MPI_LIBDIRS),-L$(dir))
LDLIBS := $(MPI_LIB) -lpcre2-8
CUDA_SOURCE_LEFT_OUT :=
CUDA_SOURCES :=
BUILD := build-cpu
else
LINK := $(NVCC) $(GENCODE)
runtime_dirs := $(CUDA_HOME)/lib64 $(DEPS_LIBDIR) $(foreach home,$(EXTRA_HOMES),$(home)/lib)
LDFLAGS := $(foreach dir,$(runtime_dirs),-L$(dir) -Xlinker -rpath=$(dir)) $(foreach dir,$(MPI_LIBDIRS),-L$(dir)) \
    $(OPENMP_FLAG:%=-Xcompiler %)
LDLIBS := $(SANITIZE_LINK) $(CUBLAS_LIB) -lcudart $(call library_flag,nccl,$(NCCL_HOME)) $(MPI_LIB) -lpcre2-8
# model/cuda_absent.cpp stands in for the CUDA runtime's few host-side answers in a CPU-only build only
CUDA_SOURCE_LEFT_OUT := model/cuda_absent.cpp
CUDA_SOURCES := $(wildcard model/cuda/*.cu lora/cuda/*.cu)
BUILD := build
endif

# the program (`make sanitize` builds its own in its build folder)
TRAIN := train
LIB_SOURCES := $(filter-out $(MPI_SOURCE_LEFT_OUT) $(CUDA_SOURCE_LEFT_OUT),\
    $(wildcard data/*.cpp model/*.cpp model/cpu/*.cpp lora/*.cpp lora/cpu/*.cpp))
TEST_SOURCES := $(wildcard test/*.cpp)
LIB_OBJECTS := $(LIB_SOURCES:%.cpp=$(BUILD)/%.o) $(CUDA_SOURCES:%.cu=$(BUILD)/%.o)
TEST_OBJECTS := $(TEST_SOURCES:%.cpp=$(BUILD)/%.o)
LAB_SOURCES := $(wildcard dev/cuda/*.cu)
LAB_BINARIES := $(LAB_SOURCES:dev/cuda/%.cu=$(BUILD)/lab/%)
WALKTHROUGH := $(patsubst lora/walkthrough/%.cpp,$(BUILD)/walkthrough/%,$(wildcard lora/walkthrough/*.cpp))

# The version and commit every run records in its run.json (model/run_directory.h), in a header rewritten only when
# they change, so that a commit rebuilds one object.
CLORA_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
CLORA_COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
$(BUILD)/version.h: FORCE
	@mkdir -p $(BUILD)
	@printf '#define CLORA_VERSION "%s"\n#define CLORA_COMMIT "%s"\n' '$(CLORA_VERSION)' '$(CLORA_COMMIT)' > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
$(BUILD)/model/run_directory.o: $(BUILD)/version.h
$(BUILD)/model/run_directory.o: CPPFLAGS += -I$(BUILD)

.PHONY: all test lab clean sanitize walkthrough FORCE
all: $(TRAIN)

# ./train is relinked when it was last linked from the other build's objects (CPU_ONLY=1 or not): $(TRAIN_FROM)
# names the build folder that made it.
TRAIN_FROM := $(dir $(TRAIN)).$(notdir $(TRAIN)).build
ifneq ($(shell cat $(TRAIN_FROM) 2>/dev/null),$(BUILD))
$(TRAIN): FORCE
endif
$(TRAIN): $(BUILD)/train.o $(LIB_OBJECTS)
	$(LINK) -o $@ $(filter-out FORCE,$^) $(LDFLAGS) $(LDLIBS)
	@echo $(BUILD) > $(TRAIN_FROM)

# the tests find the programs of their own build (build/bench/train_step, ...) through CLORA_BUILD_DIR
$(TEST_OBJECTS): CPPFLAGS += -DCLORA_BUILD_DIR='"$(BUILD)"'
# Test objects carry line tables (-g1: a failing test's backtrace still names its lines), not the full debug
# information, which was 40% of their compile time (test/test_amlora.cpp: 55 s with -g, 32 s with -g1).
$(TEST_OBJECTS): CXXFLAGS += -g1
$(BUILD)/test_runner: $(TEST_OBJECTS) $(LIB_OBJECTS)
	$(LINK) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The test runner prints one closing line: "N passed, N failed" (", N skipped" when some skipped).
# Tests that run the CLI use ./train, so it is built first, and the benchmark test build/bench/train_step.
test: $(TRAIN) $(BUILD)/test_runner $(BUILD)/bench/train_step $(WALKTHROUGH)
	@for program in $(WALKTHROUGH); do ./$$program > /dev/null || { ./$$program; exit 1; }; done
	@./$(BUILD)/test_runner

# The walkthrough's programs (lora/walkthrough/README.md): each checks what the text says of clora's CPU kernels
# and exits 1 if a check fails; `make test` runs them quietly, `make walkthrough` shows their output.
$(BUILD)/walkthrough/%: lora/walkthrough/%.cpp lora/walkthrough/values.h $(BUILD)/data/file_io.o
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $< $(BUILD)/data/file_io.o -o $@
walkthrough: $(WALKTHROUGH)
	@for program in $(WALKTHROUGH); do ./$$program || exit 1; done

# The kernel lab: one standalone program per kernel family (reference, versions, check, timing; dev/README.md lists
# the families). Each includes its family's model/cuda/*.cu or lora/cuda/*.cu (the version that ships) and links
# what those use: fail(), the cuBLAS handle and the device memory calls. build/lab holds only the programs
# (dev/gpu_check.sh runs each file there); their dependency files go to build/dev/cuda.
LAB_OBJECTS := $(BUILD)/data/file_io.o $(BUILD)/model/cuda/matmul.o $(BUILD)/model/cuda/memory.o
BENCH_BINARIES := $(BUILD)/bench/allreduce $(BUILD)/bench/train_step
lab: $(LAB_BINARIES) $(BENCH_BINARIES)

# Peer and scaling benchmarks (dev/bench): whole programs over the library, built with the lab, run on a GPU.
# (dev/bench/*.cu by nvcc, dev/bench/*.cpp by g++; their objects are kept, not removed as intermediates.)
.SECONDARY: $(patsubst dev/bench/%,$(BUILD)/dev/bench/%.o,$(basename $(wildcard dev/bench/*.cpp dev/bench/*.cu)))
$(BUILD)/bench/%: $(BUILD)/dev/bench/%.o $(LIB_OBJECTS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The study's base losses and samples (dev/experiments/sample.cpp, run by dev/experiments/run.sh), over the library.
$(BUILD)/experiments/sample: $(BUILD)/dev/experiments/sample.o $(LIB_OBJECTS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# A lab whose family calls another family's kernels links that family's object too (it cannot include a second
# family's .cu: both define their file-local helpers): the regularisers' L2 norms call cuda::sum_of_squares.
$(BUILD)/lab/regularizers: $(BUILD)/model/cuda/global_norm.o

$(BUILD)/lab/%: dev/cuda/%.cu $(LAB_OBJECTS)
	@mkdir -p $(dir $@) $(BUILD)/dev/cuda
	$(NVCC) -std=c++17 -O3 $(GENCODE) $(CPPFLAGS) -MMD -MP -MF $(BUILD)/dev/cuda/$*.d $< $(filter %.o,$^) -o $@ \
	    $(LDFLAGS) $(CUBLAS_LIB)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(NVCCFLAGS) -c $< -o $@

# train.cu holds no device code (the kernels are all in model/cuda/ and lora/cuda/): g++ compiles it as the C++ it is, in both
# builds (faster than nvcc's host pass)
$(BUILD)/train.o: train.cu
	@mkdir -p $(dir $@)
	$(CXX) -x c++ $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# AddressSanitizer + UBSan: the host code (every reader, the CPU backend, the run logic) built in build-sanitize/,
# then the tests of everything that reads input or writes a run (formats, tokenizer, task files, the run folder and
# its records, the CLI, metrics, batches, and the fuzz tests, which run build-sanitize/train through CLORA_TRAIN),
# then the default `train pretrain` and `train cl`. The whole suite at -O1 under ASan takes hours on two cores
# (`CLORA_TRAIN=build-sanitize/train build-sanitize/test_runner` runs it). ASAN_OPTIONS: CUDA's runtime needs
# protect_shadow_gap=0 to load at all; the leak check is off, since OpenMPI's and CUDA's runtimes keep what they
# allocate until exit; the fuzz tests lift their memory cap (ASan reserves terabytes of address space).
comma := ,
hash := $(shell printf '\043')
SANITIZE_ENV := ASAN_OPTIONS=protect_shadow_gap=0:detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 CLORA_FUZZ_MEMORY_KB=0
SANITIZE_FILES := formats tokenizer task_data run_records cli metrics cl_data hf fuzz
SANITIZE_TESTS := $(subst $(eval) ,$(comma),$(SANITIZE_FILES:%=[$(hash)test_%]))
sanitize:
	$(MAKE) BUILD=build-sanitize TRAIN=build-sanitize/train SANITIZE_BUILD=1 build-sanitize/train \
	    build-sanitize/test_runner
	$(SANITIZE_ENV) CLORA_TRAIN=build-sanitize/train ./build-sanitize/test_runner -# "$(SANITIZE_TESTS)"
	rm -rf build-sanitize/runs
	$(SANITIZE_ENV) build-sanitize/train pretrain --out build-sanitize/runs/pretrain
	$(SANITIZE_ENV) build-sanitize/train cl --out build-sanitize/runs/cl

clean:
	rm -rf build build-cpu build-sanitize train .train.build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
