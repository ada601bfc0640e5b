#!/bin/sh
# The C API as a user meets it: install the build into a temporary prefix, compile
# tests/capi/greedy.c (C11, warnings as errors) against the installed package with
# pkg-config, and run it on stories260K against llama.cpp's greedy tokens.
# Usage: check.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
shared=${SLM_SHARED:-${SLM_SHARED_DEFAULT:-$src/../shared}}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name slm.pc | head -n 1)
[ -n "$pc" ] || { echo "check.sh: slm.pc was not installed" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir slm)
cc -std=c11 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags slm) "$src/tests/capi/greedy.c" \
  $(pkg-config --libs slm) -Wl,-rpath,"$libdir" -o "$prefix/greedy"
"$prefix/greedy" "$shared/models/stories260K.gguf" "$shared/models/stories260K.greedy.json"
