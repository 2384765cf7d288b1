#!/usr/bin/env bash
# Runs every test: GoogleTest through ctest, the JavaScript tests with
# Node's built-in runner, then 20 seconds of fuzzing of the snapshot parser
# (run-fuzz.sh). All run even when one fails.
set -uo pipefail
cd "$(dirname "$0")/../.."

ctest --test-dir build/native --output-on-failure -j"$(nproc)"
cpp_status=$?

node --test --test-concurrency=1 tests/js/
js_status=$?

DUALMEM_FUZZ_SECONDS=20 bash tests/tools/run-fuzz.sh
fuzz_status=$?

if ((cpp_status != 0 || js_status != 0 || fuzz_status != 0)); then
  echo "tests failed: ctest exit $cpp_status, node --test exit $js_status," \
    "snapshot fuzzing exit $fuzz_status" >&2
  exit 1
fi
