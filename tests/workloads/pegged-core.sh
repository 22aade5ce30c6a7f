#!/bin/bash
# One single-threaded spinner holding CPU1 (SCHED_FIFO priority 1, pinned; the RT limit raised
# to 99% for the run so it is not throttled at 95%) while the box is otherwise busy (other
# engineers' builds on the shared machine keep CPU0 busy). Torn down after the capture.
# usage: pegged-core.sh OUTDIR
set -u
OUT=$1
TRIAGE=${TRIAGE:-$(cd "$(dirname "$0")/../.." && pwd)/target/debug/triage}
old_rt=$(cat /proc/sys/kernel/sched_rt_runtime_us)
cleanup() { [ -n "${SPID:-}" ] && kill "$SPID" 2>/dev/null; echo "$old_rt" > /proc/sys/kernel/sched_rt_runtime_us; }
trap cleanup EXIT
echo 990000 > /proc/sys/kernel/sched_rt_runtime_us
timeout 60 chrt -f 1 taskset -c 1 python3 -c 'while True: pass' &
SPID=$!
sleep 3
"$TRIAGE" capture --no-bpf --out "$OUT" --note "issue 9 item 3: ${NOTE:-}" >/dev/null
kill "$SPID"; wait "$SPID" 2>/dev/null; SPID=
