#!/usr/bin/env bash
# Installs everything slm's build and tests need on a fresh Debian 12 (run as root; safe to
# run again), then builds Release into build/.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ pkg-config git ca-certificates   # build
  libpcre2-dev              # pre-tokenizer regexes
  nlohmann-json3-dev        # JSON
  libcpp-httplib-dev        # HTTP client of the server tests (the server is src/server/http_server.cpp)
  libcli11-dev              # command line
  libfmt-dev                # formatting
  libgtest-dev libgmock-dev # tests
  libbenchmark-dev          # micro-benchmarks
  clang                     # libFuzzer target for the GGUF reader
  tmux                      # the chat test drives slm chat on a terminal
)
# Node.js and npm for the end-to-end tests with the official OpenAI client (some machines
# carry a newer Node.js of their own; only install Debian's when there is none).
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
bash scripts/apt-install.sh "${packages[@]}"

if [ -f tests/e2e/package.json ] && command -v npm >/dev/null; then
  (cd tests/e2e && npm install --no-audit --no-fund --silent)
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
echo "setup: built build/slm"
