#!/bin/bash
# Runs libFuzzer harnesses for a set amount of *CPU* time each (not wall time),
# so that a long campaign can share the machine: the fuzzers run under `nice`,
# may be paused with SIGSTOP (a benchmark needs the cores) and resumed with
# SIGCONT, and each still gets its full CPU budget. Used by `make fuzz-hours`.
#
#   bash scripts/fuzz_hours.sh CPU_SECONDS JOBS HARNESS...
#
# Needs the harnesses built (`make fuzz-build`, in build-fuzz/). Each harness
# grows its corpus in build-fuzz/corpus/HARNESS/, writes crashes to
# build-fuzz/crashes/, its log to build-fuzz/logs/HARNESS.log.START, and, when it is
# done, one line to build-fuzz/logs/summary.txt:
#   HARNESS cpu_s=... wall_s=... execs=... corpus=... crashes=...
# CPU time counts the harness and its reaped children (the isolated HDF5
# reader runs in a child process). A campaign may be spread over several
# runs (a pause must stay shorter than FUZZ_TIMEOUT, or libFuzzer reports it as a
# timeout): the CPU seconds of earlier lines for a harness count toward its budget
# (a harness already at its budget is skipped). Exit status 1 if any harness
# found a crash. FUZZ_NICE (19) is the niceness; FUZZ_TIMEOUT (300 s) is
# libFuzzer's per-input timeout, which counts wall time: a niced fuzzer on a
# busy machine would report a 20 s wall-clock stall as a hang. To end a
# campaign early and keep its figures, create build-fuzz/logs/stop: each
# running harness stops and writes its line, and no other starts.
set -u
[ $# -ge 3 ] || { echo "usage: bash scripts/fuzz_hours.sh CPU_SECONDS JOBS HARNESS..." >&2; exit 2; }
budget=$1; jobs=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
fb=${FUZZ_BUILD:-$root/build-fuzz}
rss=${FUZZ_RSS_MB:-2048}
niceness=${FUZZ_NICE:-19}
timeout=${FUZZ_TIMEOUT:-300}
mkdir -p "$fb/logs" "$fb/crashes"
ticks=$(getconf CLK_TCK)

# utime + stime + cutime + cstime of PID, in seconds.
cpu_seconds() {
    awk -v t="$ticks" '{ sub(/^.*\) /, ""); print int(($12 + $13 + $14 + $15) / t) }' "/proc/$1/stat" 2>/dev/null
}

run_one() {
    h=$1
    exe=$fb/fuzz/fuzz_$h
    [ -x "$exe" ] || { echo "fuzz_hours: $exe is missing (make fuzz-build)" >&2; return 1; }
    mkdir -p "$fb/corpus/$h" "$root/fuzz/regressions/$h"
    dict=""
    [ -f "$root/fuzz/$h.dict" ] && dict="-dict=$root/fuzz/$h.dict"
    # fuzz_keras runs libhdf5 in process, and libhdf5 1.10.8 loops forever
    # or crashes on some damaged .h5 data within minutes (SECURITY.md): the
    # first such input would end the campaign. It runs in libFuzzer's fork
    # mode instead, which records each crash, hang and OOM in build-fuzz/crashes/
    # and goes on, with a short per-input timeout (a hang costs this much);
    # `bash scripts/fuzz_triage.sh keras` then replays every recorded input
    # and fails unless each one stops inside libhdf5. The wall that keeps
    # those crashes from users is fuzzed by fuzz_keras_isolated.
    mode="-timeout=$timeout"
    [ "$h" = keras ] && mode="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=${FUZZ_KERAS_TIMEOUT:-5}"
    before=$(awk -v h="$h" '$1 == h { sub(/cpu_s=/, "", $2); t += $2 } END { print t + 0 }' \
        "$fb/logs/summary.txt" 2>/dev/null)
    [ -n "$before" ] || before=0
    left=$((budget - before))
    [ "$left" -gt 0 ] || { echo "$h: already fuzzed for ${before} CPU s"; return 0; }
    start=$(date +%s)
    LSAN_OPTIONS=suppressions=$root/fuzz/lsan.supp nice -n "$niceness" "$exe" -rss_limit_mb="$rss" \
        $mode -print_final_stats=1 -artifact_prefix="$fb/crashes/$h-" $dict \
        "$fb/corpus/$h" "$root/fuzz/corpus/$h" "$root/fuzz/regressions/$h" \
        >"$fb/logs/$h.log.$start" 2>&1 &
    pid=$!
    used=0
    while kill -0 "$pid" 2>/dev/null; do
        used=$(cpu_seconds "$pid")
        [ -n "$used" ] && echo "$used" >"$fb/logs/$h.cpu"
        [ -n "$used" ] && [ "$used" -ge "$left" ] && { kill -INT "$pid"; break; }
        [ -e "$fb/logs/stop" ] && { kill -INT "$pid"; break; }
        sleep 5
    done
    # libFuzzer's fork mode (fuzz_keras) may keep starting jobs after SIGINT:
    # give it 30 s to finish its job and write its stats, then SIGTERM it.
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    termed=0
    kill -0 "$pid" 2>/dev/null && { kill -TERM "$pid"; termed=1; }
    wait "$pid"
    rc=$?
    wall=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$fb/logs/$h.log.$start" | tail -1)
    # fork mode's own stats say 0: its progress lines ("#N: cov: ...") count the jobs' runs
    [ -n "$execs" ] && [ "$execs" != 0 ] || execs=$(grep -o '^#[0-9]*' "$fb/logs/$h.log.$start" | tail -1 | tr -d '#')
    corpus=$(ls "$fb/corpus/$h" | wc -l)
    crashes=$(ls "$fb/crashes" | grep "^$h-" | grep -vc "^$h-slow-unit-")
    # libFuzzer exits 0 on SIGINT after its budget; anything else is a finding.
    status=ok
    [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ "$rc" -ne 72 ] && status="rc=$rc"
    [ "$termed" -eq 1 ] && [ "$rc" -eq 143 ] && status=ok
    echo "$h cpu_s=$used wall_s=$wall execs=${execs:-?} corpus=$corpus crashes=$crashes $status" |
        tee -a "$fb/logs/summary.txt"
    [ "$crashes" -eq 0 ]
}

failed=0
rm -f "$fb/logs/stop"
# At most JOBS harnesses at once. Polled rather than `wait -n`: bash 5.2's
# wait -n once missed a finished job here and left a slot idle for good.
pids=""
for h in "$@"; do
    while :; do
        alive=""
        for p in $pids; do
            kill -0 "$p" 2>/dev/null && alive="$alive $p"
        done
        pids=$alive
        [ "$(echo $pids | wc -w)" -lt "$jobs" ] && break
        sleep 2
    done
    [ -e "$fb/logs/stop" ] && break
    run_one "$h" &
    pids="$pids $!"
done
wait
grep -q 'crashes=[1-9]' "$fb/logs/summary.txt" 2>/dev/null && failed=1
exit $failed
