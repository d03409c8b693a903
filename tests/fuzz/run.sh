#!/usr/bin/env bash
# Runs the fuzz targets built by `make fuzz`, JOBS at a time, each for SECONDS,
# and prints one line per target: executions, corpus size, crashes.
#   tests/fuzz/run.sh FUZZ_DIR SECONDS JOBS [TARGET...]
# Crashing inputs are written to FUZZ_DIR/crashes/TARGET/; once fixed, copy each
# to tests/fuzz/regressions/TARGET/ (make test replays them); the next run of
# that target clears its crashes folder. Logs: FUZZ_DIR/logs/.
# Exits 1 if any target crashed.
set -uo pipefail
dir=$(cd "$1" && pwd) seconds=$2 jobs=$3
shift 3
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf bpe sentencepiece cli checkpoint)
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$dir/logs"

run_one() {  # target
    local t=$1 opts=()
    case $t in
        gguf) opts=(-max_len=65536) ;;
        bpe) opts=(-max_len=4096) ;;
        sentencepiece) opts=(-max_len=16384 -close_fd_mask=3) ;;   # the library logs to stderr
        checkpoint) opts=(-max_len=65536) ;;
        cli) opts=(-max_len=512 -dict="$dir/corpus/cli.dict" -close_fd_mask=3) ;;
    esac
    rm -rf "$dir/crashes/$t"   # libFuzzer stops at the first crash: at most one per run
    mkdir -p "$dir/crashes/$t" "$root/tests/fuzz/regressions/$t"
    # The regressions are a second, read-only corpus: replayed first, never written to.
    "$dir/fuzz_$t" "${opts[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$dir/crashes/$t/" \
        "$dir/corpus/$t" "$root/tests/fuzz/regressions/$t" >"$dir/logs/$t.log" 2>&1
    echo $? >"$dir/logs/$t.rc"
}
export -f run_one
export dir seconds root
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'

status=0
for t in "${targets[@]}"; do
    log=$dir/logs/$t.log
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    corpus=$(ls "$dir/corpus/$t" | wc -l)
    crashes=$(ls "$dir/crashes/$t" | grep -cE '^(crash|timeout|oom|leak)-')
    rc=$(cat "$dir/logs/$t.rc")
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
        status=1
        echo "fuzz_$t: CRASH (exit $rc; inputs in $dir/crashes/$t, log $log)"
        grep -m3 -E 'ERROR|runtime error|deadly signal|uncaught|terminate' "$log" | sed 's/^/    /'
    fi
    printf 'fuzz_%-14s %12s executions in %s s, corpus %s, %s crashes\n' "$t" "${runs:-?}" "$seconds" "$corpus" "$crashes"
done
exit $status
