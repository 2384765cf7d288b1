#!/usr/bin/env bash
# Builds the snapshot parser's libFuzzer target with clang in build/fuzz
# (AddressSanitizer and UndefinedBehaviorSanitizer on), writes seed snapshots
# into build/fuzz/corpus and fuzzes for DUALMEM_FUZZ_SECONDS seconds (default
# 20). Exits non-zero on a crash, a sanitizer report or a snapshot that does
# not serialize back to its own bytes. The failing input is kept in
# build/fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${DUALMEM_FUZZ_SECONDS:-20}"

# libFuzzer comes with clang (Debian: clang and libclang-rt-14-dev), so this
# build folder uses clang while build/native uses the default compiler.
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Release \
  -DDUALMEM_BUILD_FUZZERS=ON -DDUALMEM_BUILD_TESTS=OFF >/dev/null
cmake --build build/fuzz -j"$(nproc)" --target snapshot_fuzz snapshot_fuzz_seeds >/dev/null

mkdir -p build/fuzz/corpus build/fuzz/artifacts
build/fuzz/snapshot_fuzz_seeds build/fuzz/corpus

# libFuzzer reports to stderr at length; keep it in a log and show its end
# only when something was found.
log=build/fuzz/snapshot_fuzz.log
if ! build/fuzz/snapshot_fuzz -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix=build/fuzz/artifacts/ build/fuzz/corpus >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "snapshot fuzzing failed; the full log is $log, the input in build/fuzz/artifacts" >&2
  exit 1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
echo "snapshot fuzzing: $runs inputs in $seconds s, no crash (log: $log)"
