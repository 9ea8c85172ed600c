#!/usr/bin/env bash
# Runs every libFuzzer binary of a TFS_FUZZ build for SECONDS each, two at a
# time, on a scratch copy of its committed corpus (so runs never rewrite the
# repository). Any crash, leak, sanitizer report or timeout fails the run;
# its input is kept under $BUILD/fuzz-findings/ to become a regression seed.
set -euo pipefail
build=${1:?usage: run-fuzzers.sh BUILD_DIR SECONDS}
seconds=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
findings="$build/fuzz-findings"
mkdir -p "$findings"

run_one() {
  local bin=$1 name
  name=$(basename "$bin")
  mkdir -p "$work/$name"
  local seeds="$root/fuzz/corpus/$name"
  local dict="$root/fuzz/$name.dict"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
              -print_final_stats=1 -artifact_prefix="$findings/$name-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  if "$bin" "${args[@]}" "$work/$name" "$seeds" >"$work/$name.log" 2>&1; then
    echo "fuzz: $name: $(grep -E '^stat::number_of_executed_units' "$work/$name.log" | awk '{print $2}') runs in ${seconds}s, no finding"
  else
    echo "fuzz: $name: FINDING (log follows)"
    tail -n 60 "$work/$name.log"
    return 1
  fi
}

bins=()
for b in "$build"/fuzz/fuzz_*; do
  case "$b" in *_replay) continue ;; esac
  [ -x "$b" ] && bins+=("$b")
done
[ ${#bins[@]} -gt 0 ] || { echo "fuzz: no fuzz targets in $build/fuzz" >&2; exit 1; }

status=0
pids=()
for b in "${bins[@]}"; do
  run_one "$b" & pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "fuzz: ${#bins[@]} targets, $([ $status -eq 0 ] && echo 'all clean' || echo 'FINDINGS')"
exit $status
