#!/usr/bin/env bash
# Runs every test: GoogleTest through ctest, then the JavaScript tests with
# Node's built-in runner. Both run even when the first fails.
set -uo pipefail
cd "$(dirname "$0")/../.."

ctest --test-dir build/native --output-on-failure -j"$(nproc)"
cpp_status=$?

node --test --test-concurrency=1 tests/js/
js_status=$?

if ((cpp_status != 0 || js_status != 0)); then
  echo "tests failed: ctest exit $cpp_status, node --test exit $js_status" >&2
  exit 1
fi
