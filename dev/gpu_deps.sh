#!/usr/bin/env bash
# The Debian packages the build needs, carried to a machine that reaches no package registry (the lent GPU
# machine: nvcc, cuBLAS and PyTorch, none of Debian's -dev packages).
#
#   bash dev/gpu_deps.sh           here, with Debian's registry: downloads the packages' .deb files into .deps/debs
#                                  (git-ignored; nothing is installed) and unpacks them into .deps/root
#   bash dev/gpu_deps.sh --unpack  there, with no registry: unpacks .deps/debs into .deps/root (dpkg -x)
#   bash dev/gpu_deps.sh --check   here: proves .deps/root is enough. Builds a fresh clone of HEAD with
#                                  `make DEPS=.deps/root` inside a mount namespace whose /usr hides every file of the
#                                  system's own -dev packages (an overlay of whiteouts), so a header or library found
#                                  anywhere but .deps/root fails the build; then runs the binary it built.
#
# A build with the prefix: `make DEPS=.deps/root` (Makefile). dev/gpu_check.sh unpacks and uses .deps when it is
# there: carry `.deps/debs` (about 3 MiB) with the device tool. OpenMPI is not carried (its runtime closure is
# large, and every binary would need it to start): without mpicxx the Makefile builds without MPI and the mpirun
# rows are skipped, saying so. NCCL is not a Debian package: dev/gpu_check.sh takes the CUDA toolkit's, else the
# nvidia-nccl wheel of the machine's Python, else one unpacked into .deps/root by hand, and says which.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
debs=.deps/debs
root=.deps/root
# headers: Eigen, Catch2 (v2, one header), nlohmann-json; PCRE2 (headers, the library and its runtime .so); make,
# in case the machine has none
packages=(libeigen3-dev catch2 nlohmann-json3-dev libpcre2-dev libpcre2-8-0 make)
# what --check hides: every file of these packages, as installed on this machine by dev/setup.sh
hidden_packages=(libeigen3-dev catch2 nlohmann-json3-dev libpcre2-dev libopenmpi-dev openmpi-bin)

unpack() {
    ls "$debs"/*.deb >/dev/null 2>&1 || { echo "gpu_deps: no packages in $debs (run bash dev/gpu_deps.sh here)" >&2; exit 1; }
    rm -rf "$root"
    mkdir -p "$root"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root"; done
    echo "gpu_deps: unpacked $(ls "$debs"/*.deb | wc -l) packages into $root ($(du -sm "$root" | cut -f1) MiB)"
}

download() {
    rm -rf "$debs"
    mkdir -p "$debs"
    # (apt warns that it downloads as root, unsandboxed: expected here)
    (cd "$debs" && apt-get download -qq "${packages[@]}" 2> >(grep -v "unsandboxed as root" >&2))
    local package
    for package in "${packages[@]}"; do
        ls "$debs/${package}_"*.deb >/dev/null 2>&1 || { echo "gpu_deps: $package was not downloaded" >&2; exit 1; }
    done
    echo "gpu_deps: downloaded into $debs ($(du -sm "$debs" | cut -f1) MiB): $(cd "$debs" && ls *.deb | tr '\n' ' ')"
    unpack
}

# The hidden build. Every non-directory path of the hidden packages under /usr becomes a whiteout (a 0/0 character
# device) in the upper layer of an overlay mounted on /usr, in a private mount namespace: the build sees /usr without
# them, the rest of the machine is untouched.
check() {
    [ -d "$root/usr/include/eigen3" ] || { echo "gpu_deps: $root is missing (run bash dev/gpu_deps.sh first)" >&2; exit 1; }
    local work
    work=$(mktemp -d /tmp/clora_gpu_deps.XXXXXX)
    mkdir -p "$work/upper" "$work/overlay_work" "$work/probe/upper" "$work/probe/work" "$work/probe/mount"
    # a machine that cannot make the namespace and the overlay (no root, no overlayfs) skips, saying so
    if ! unshare -m mount -t overlay overlay -o lowerdir=/usr,upperdir="$work/probe/upper",workdir="$work/probe/work" \
        "$work/probe/mount" 2>"$work/probe.err"; then
        echo "gpu_deps --check: skipped: no private mount namespace with an overlay here ($(head -1 "$work/probe.err"))"
        rm -rf "$work"
        return 0
    fi
    local count=0 package path
    for package in "${hidden_packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || continue
        while read -r path; do
            [[ "$path" == /usr/* ]] || continue
            [ -d "$path" ] && [ ! -L "$path" ] && continue
            mkdir -p "$work/upper$(dirname "$path")"
            mknod "$work/upper$path" c 0 0
            count=$((count + 1))
        done < <(dpkg -L "$package")
    done
    mv "$work/upper/usr" "$work/upper_usr"
    echo "gpu_deps --check: hiding $count files of ${hidden_packages[*]}"
    git clone -q --no-hardlinks "$repo" "$work/clora"
    echo "gpu_deps --check: building a fresh clone of $(git rev-parse --short HEAD) in $work/clora"
    # the build's flags at -O0: this proves that everything is found, not how fast it runs
    unshare -m bash -euo pipefail -c '
        mount -t overlay overlay -o lowerdir=/usr,upperdir="$1/upper_usr",workdir="$1/overlay_work" /usr
        if echo "#include <Eigen/Core>" | g++ -x c++ -fsyntax-only -I/usr/include/eigen3 - 2>/dev/null; then
            echo "gpu_deps --check: the system Eigen is still visible: the hiding failed" >&2; exit 1
        fi
        ! command -v mpicxx >/dev/null || { echo "gpu_deps --check: mpicxx is still visible" >&2; exit 1; }
        cd "$1/clora"
        CXXFLAGS="-O0 -g0" NVCCFLAGS="-O0" make -j"$(nproc)" DEPS="$2" train build/test_runner 2>&1 | tee "$1/build.log"
        ./train --version >/dev/null 2>&1 || ./train --help >/dev/null
        ldd ./train | grep -E "pcre2|nccl|cublas|mpi" || true
        ./build/test_runner "formats*" | tail -1
    ' check "$work" "$repo/$root"
    cp "$work/build.log" /tmp/clora_gpu_deps_build.log
    rm -rf "$work"
    echo "gpu_deps --check: ok in $SECONDS s: the build found everything in $root; its log's first lines" \
        "(whole: /tmp/clora_gpu_deps_build.log):"
    head -3 /tmp/clora_gpu_deps_build.log
}

case "${1:-}" in
    "") download ;;
    --unpack) unpack ;;
    --check) check ;;
    *) echo "usage: bash dev/gpu_deps.sh [--unpack | --check]" >&2; exit 2 ;;
esac
