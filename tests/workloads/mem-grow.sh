#!/bin/bash
# A python3 process growing ~30 MiB/s (3 MiB of touched memory every 0.1 s) for 12 s; the capture
# runs from its 3rd second. usage: mem-grow.sh OUTDIR
set -u
TRIAGE=${TRIAGE:-$(cd "$(dirname "$0")/../.." && pwd)/target/debug/triage}
timeout 12 python3 -c '
import time
a = []
while True:
    a.append(b"x" * (3 << 20))
    time.sleep(0.1)
' &
P=$!
sleep 3
"$TRIAGE" capture --no-bpf --out "$1" --note "issue 9 item 9: ${NOTE:-}" >/dev/null
kill $P 2>/dev/null; wait $P 2>/dev/null
