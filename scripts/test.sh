#!/usr/bin/env bash
# Builds everything and runs every test: unit tests (ctest) and integration tests (pytest with real
# clients) under AddressSanitizer + UndefinedBehaviorSanitizer, a clang build with -Werror, and a
# short libFuzzer run of each fuzz target. Exits non-zero when anything fails.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1
jobs=$(nproc)
fail=0
step() { echo; echo "=== $*"; }

step "build (gcc, ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGW_SANITIZE=ON >/dev/null || exit 1
cmake --build build-asan -j"$jobs" || exit 1

step "unit tests (ctest)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs") || fail=1

step "integration tests (pytest, real gateway binary under ASan+UBSan)"
# three test processes at once: most tests wait on sockets and timers, not on the CPU
GATEWAY_BIN="$PWD/build-asan/gateway" /usr/bin/python3 -m pytest -q -n 3 tests/integration
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then fail=1; fi

step "ThreadSanitizer: the whole integration suite with every config at 2 workers"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DGW_TSAN=ON >/dev/null || exit 1
cmake --build build-tsan -j"$jobs" --target gateway || exit 1
# tests that count per-worker state (marked one_worker) keep their single worker
GATEWAY_TEST_WORKERS=2 GATEWAY_BIN="$PWD/build-tsan/gateway" /usr/bin/python3 -m pytest -q -n 3 tests/integration
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then fail=1; fi

# The soak is two minutes of wall time whatever the CPU does (a busier machine only sends fewer
# requests), so the clang build and the fuzz run below share those minutes with it; its verdict is
# waited for at the end.
step "soak (2 minutes of mixed traffic with reloads and backend restarts, ASan+UBSan), in the background"
soak_log=$(mktemp)
/usr/bin/python3 tests/soak/soak.py --gateway build-asan/gateway --duration 120 >"$soak_log" 2>&1 &
soak_pid=$!

step "build (clang-14, -Werror) and fuzz smoke run"
CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGW_FUZZ=ON >/dev/null || exit 1
# the library (every source, so clang's warnings are checked too) and the fuzz targets
fuzzers=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
cmake --build build-fuzz -j"$jobs" --target gwcore $fuzzers || fail=1
for f in build-fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f"); corpus="tests/fuzz/corpus/${name#fuzz_}"
  dict="tests/fuzz/${name#fuzz_}.dict"; extra=()
  [ -f "$dict" ] && extra+=("-dict=$dict")
  work=$(mktemp -d)
  if ! "$f" -max_total_time=5 "${extra[@]}" "$work" $( [ -d "$corpus" ] && echo "$corpus" ) >"$work.log" 2>&1; then
    echo "FUZZ FAILURE in $name:"; tail -40 "$work.log"; fail=1
  else
    echo "$name: $(grep -o 'Done [0-9]* runs' "$work.log" | tail -1)"
  fi
  rm -rf "$work" "$work.log"
done

step "soak verdict"
wait "$soak_pid" || fail=1
cat "$soak_log"; rm -f "$soak_log"

echo
if [ $fail -ne 0 ]; then echo "SOME TESTS FAILED"; exit 1; fi
echo "ALL TESTS PASSED"
