#!/bin/bash
# The floors under triage's eBPF overhead goals (issue 13), measured in one run against the
# real probes: each *.patch here cuts a probe's program down to what any design of it must do
# (attach, walk the stacks, read the clock), builds that variant, and times the same pinned
# workload untraced, under today's probe and under each floor, alternating round by round.
#
#   bash xtask/floors/run.sh [ROUNDS]      (as root; defaults to 5 rounds)
#
# offcpu: `taskset -c 0 perf bench sched pipe -l 50000` (seconds) under `offcpu --min-block 1us`.
# syscalls: `taskset -c 0 perf bench syscall basic -l 2000000` (usecs/op, getppid) under
# `syscalls` (with latency) and `syscalls --no-latency`; a patch named *-nolat is a floor of
# the latter, run with --no-latency.
set -euo pipefail
ROUNDS=${1:-5}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/target/floors
mkdir -p "$OUT"
cd "$ROOT"
cargo build --release -q -p triage
cp target/release/triage "$OUT/triage-head"
for p in xtask/floors/*.patch; do
  name=$(basename "$p" .patch)
  wt=$(mktemp -d)
  git worktree add -q --detach "$wt" HEAD
  git -C "$wt" apply "$ROOT/$p"
  # Share the compiled dependencies; only triage itself is rebuilt.
  if [ ! -d "$OUT/target/release/deps" ]; then
    mkdir -p "$OUT/target/release"
    cp -al "$ROOT/target/release/deps" "$OUT/target/release/deps"
    cp -r "$ROOT/target/release/build" "$ROOT/target/release/.fingerprint" "$OUT/target/release/"
  fi
  (cd "$wt" && CARGO_TARGET_DIR="$OUT/target" cargo build --release -q -p triage)
  cp "$OUT/target/release/triage" "$OUT/triage-$name"
  git worktree remove --force "$wt"
done

pipe() { taskset -c 0 perf bench sched pipe -l 50000 | awk '/Total time/{print $3}'; }
getppid() { taskset -c 0 perf bench syscall basic -l 2000000 | awk '/usecs\/op/{print $1}'; }
under() { # BIN WORKLOAD ARGS...: run WORKLOAD while BIN ARGS traces
  local bin=$1 work=$2; shift 2
  "$bin" "$@" --duration 8 --json >/dev/null 2>&1 &
  local t=$!
  sleep 1.5
  $work
  kill -INT $t 2>/dev/null || true
  wait $t 2>/dev/null || true
}

log=$OUT/rounds.txt
: >"$log"
for r in $(seq "$ROUNDS"); do
  echo "offcpu none $(pipe)" >>"$log"
  echo "offcpu head $(under "$OUT/triage-head" pipe offcpu --min-block 1us)" >>"$log"
  for f in "$OUT"/triage-offcpu-*; do
    echo "offcpu ${f##*/triage-} $(under "$f" pipe offcpu --min-block 1us)" >>"$log"
  done
  echo "syscalls none $(getppid)" >>"$log"
  echo "syscalls head--no-latency $(under "$OUT/triage-head" getppid syscalls --no-latency)" >>"$log"
  echo "syscalls head $(under "$OUT/triage-head" getppid syscalls)" >>"$log"
  for f in "$OUT"/triage-syscalls-*; do
    case $f in
    *-nolat) args=(syscalls --no-latency) ;;
    *) args=(syscalls) ;;
    esac
    echo "syscalls ${f##*/triage-} $(under "$f" getppid "${args[@]}")" >>"$log"
  done
  echo "round $r/$ROUNDS done" >&2
done
python3 - "$log" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    group, subject, value = line.split()
    d[(group, subject)].append(float(value))
for group in ("offcpu", "syscalls"):
    base = statistics.median(d[(group, "none")])
    print(f"{group}: medians of {len(d[(group, 'none')])} alternated rounds")
    for (g, s), v in d.items():
        if g == group:
            m = statistics.median(v)
            print(f"  {s:<40} {m:9.4f}  {m / base:5.2f}x")
PY
