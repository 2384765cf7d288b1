#!/usr/bin/env bash
# Builds the native core, its tools and tests (build/native) and the two
# WebAssembly modules, with and without SIMD (build/wasm, output in web/wasm).
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=$(nproc)

cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/native -j"$jobs"

# Debian's emscripten 3.1.6 runs its JavaScript optimizer with Node and
# finds Debian's acorn only through NODE_PATH.
export NODE_PATH=/usr/share/nodejs
emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/wasm -j"$jobs"
