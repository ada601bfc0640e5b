#!/usr/bin/env bash
# Builds slm for 64-bit Arm (aarch64) with Debian's cross compiler into build-aarch64/ and runs
# the kernel, quant, model and tokenizer suites under qemu user emulation, ending with ctest's
# summary line. Installs what it needs first (run as root; safe to run again): the cross
# toolchain, qemu-user-static and the arm64 development packages of the build.
set -euo pipefail
cd "$(dirname "$0")/.."
export SLM_SHARED="${SLM_SHARED:-$(realpath ../shared)}"

packages=(g++-aarch64-linux-gnu qemu-user-static libpcre2-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64
          libfmt-dev:arm64 libcpp-httplib-dev:arm64)
# The arm64 packages come from the same Debian mirrors once dpkg knows the architecture.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  if [ "$(id -u)" -ne 0 ]; then sudo dpkg --add-architecture arm64; else dpkg --add-architecture arm64; fi
fi
bash scripts/apt-install.sh "${packages[@]}"

cmake -S . -B build-aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" >/dev/null
suites=(kernels quant model tokenizer)
ninja -C build-aarch64 -j"$(nproc 2>/dev/null || echo 2)" "${suites[@]/#/test_}"
# ctest prefixes each test with the emulator (CMAKE_CROSSCOMPILING_EMULATOR). The plain runs
# use the neon tier, kernels_scalar and model_scalar the scalar one.
ctest --test-dir build-aarch64 -j2 --output-on-failure -R "^($(IFS='|'; echo "${suites[*]}"))(_scalar)?\$"
