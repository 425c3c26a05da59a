#!/usr/bin/env bash
# Runs the libFuzzer targets longer than the smoke run of scripts/test.sh and reports, per target,
# executions, executions per second, edges covered and corpus size, as a Markdown table.
#
#   scripts/fuzz.sh                  # every target, 300 s each
#   scripts/fuzz.sh 60 fuzz_h2       # one target, 60 s
#   MERGE=1 scripts/fuzz.sh 600      # also merge new interesting inputs into tests/fuzz/corpus/
#
# Exits non-zero when a target finds a crash, a leak or a violated property; the reproducer is left
# in the working directory libFuzzer names (crash-*, leak-*) and the log's tail is printed.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
scripts/deps.sh test >/dev/null || exit 1
CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGW_FUZZ=ON >/dev/null || exit 1
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}" >/dev/null || exit 1

fail=0
rows=()
for name in "${targets[@]}"; do
  short=${name#fuzz_}
  corpus="tests/fuzz/corpus/$short" dict="tests/fuzz/$short.dict"
  work=$(mktemp -d)
  extra=()
  [ -f "$dict" ] && extra+=("-dict=$dict")
  [ -d "$corpus" ] && cp -r "$corpus/." "$work/"
  echo "fuzzing $name for ${seconds}s" >&2
  if ! "build-fuzz/$name" -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" "$work" >"$work.log" 2>&1; then
    echo "FAILURE in $name:" >&2; tail -40 "$work.log" >&2; fail=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$')
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$work.log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$work.log" | tail -1 | grep -o '[0-9]*')
  files=$(find "$work" -type f | wc -l)
  rows+=("| $name | $seconds | ${runs:-?} | ${speed:-?} | ${cov:-?} | $files |")
  if [ "${MERGE:-0}" = 1 ] && [ -d "$corpus" ]; then
    "build-fuzz/$name" -merge=1 "${extra[@]}" "$corpus" "$work" >/dev/null 2>&1 || true
  fi
  rm -rf "$work" "$work.log"
done

echo "| target | seconds | executions | exec/s | edges covered | corpus files |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
exit $fail
