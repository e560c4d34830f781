#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) in build/fuzz, writes their seed corpora and runs
# each for N seconds at the lowest CPU priority, then prints libFuzzer's totals per target. Behind
# `tools/oac fuzz` and the ctest smoke run.
#
#   tests/fuzz/run_fuzzers.sh [--seconds N] [--build-dir DIR] [--report FILE] [TARGET...]
#                                                                       (targets: decode dicom prepare frames)
#
# New inputs that reach new code go to DIR/corpus/TARGET (kept between runs), crashes to DIR/findings/,
# libFuzzer's log to DIR/logs/TARGET.log. --report also writes the totals as a markdown table with the
# date, the commit and the run length (tests/fuzz/RESULTS.md is one). Exit status 1 when a target found
# a crash, leak or timeout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=600
build="$ROOT/build/fuzz"
report=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    decode|dicom|prepare|frames) targets+=("$1"); shift ;;
    *) echo "run_fuzzers: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(decode dicom prepare frames)

# Lowest priority by default, so fuzzing never slows other work; OAC_FUZZ_NICE=0 gives it a fair share.
low() { nice -n "${OAC_FUZZ_NICE:-19}" "$@"; }
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/tests/fuzz/ubsan.supp"

low cmake -S "$ROOT" -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOAC_FUZZ=ON >/dev/null
low cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" >/dev/null

seeds="$build/seeds"
if [ ! -d "$seeds" ] || [ "$ROOT/tests/support/make_seeds.py" -nt "$seeds" ] || [ "$ROOT/tests/support/bad_inputs.py" -nt "$seeds" ]; then
  rm -rf "$seeds"
  low /usr/bin/python3 "$ROOT/tests/support/make_seeds.py" --out "$seeds" >/dev/null
fi

status=0
rows=()
printf '%-8s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  findings="$build/findings/$target"
  log="$build/logs/$target.log"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  dictionary=()
  [ "$target" = dicom ] || [ "$target" = frames ] && dictionary=(-dict="$ROOT/tests/fuzz/dicom.dict")
  result=ok
  # -rss_limit_mb: the core's own limits keep memory far below this; going over it is a finding.
  if ! low "$build/fuzz_$target" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$findings/" "${dictionary[@]}" "$corpus" "$seeds/$target" >"$log" 2>&1; then
    result="FINDING (see $log and $findings/)"
    status=1
  fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  coverage=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
  read -r _ cov _ ft _ corp <<<"${coverage:-cov: ? ft: ? corp: ?}"
  printf '%-8s %12s %8s %8s %8s  %s\n' "$target" "${executions:-?}" "$cov" "$ft" "$corp" "$result"
  rows+=("| \`fuzz_$target\` | $seconds | ${executions:-?} | $cov | $ft | $corp | $result |")
done

if [ -n "$report" ]; then
  {
    echo "# Fuzzing results"
    echo
    echo "Written by \`tools/oac fuzz --seconds $seconds --report ...\` on $(date -u +%Y-%m-%dT%H:%MZ) at commit"
    echo "$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- wasm tests/fuzz || echo ' (with uncommitted changes)'):"
    echo "libFuzzer with ASan and UBSan (clang-14), one process per target, seeds from tests/support/make_seeds.py plus"
    echo "the corpus kept from earlier runs. cov: code edges reached; ft: libFuzzer features; corpus: inputs kept."
    echo
    echo "| target | seconds | executions | cov | ft | corpus | result |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
  } >"$report"
fi
exit $status
