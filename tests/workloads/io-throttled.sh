#!/bin/bash
# dd writing with O_DIRECT to a loop device (64M file in /tmp) from a v1 blkio cgroup limited to
# 1 MiB/s on that device (blkio.throttle.write_bps_device): tasks wait on I/O while vda idles.
# usage: io-throttled.sh OUTDIR
set -u
TRIAGE=${TRIAGE:-$(cd "$(dirname "$0")/../.." && pwd)/target/debug/triage}
T=/tmp/triage-iothr.$$; CG=/sys/fs/cgroup/blkio/triage-io-$$
cleanup() {
    [ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    [ -n "${L:-}" ] && losetup -d "$L"
    rmdir "$CG" 2>/dev/null; rm -rf "$T"
}
trap cleanup EXIT
mkdir -p $T; truncate -s 64M $T/img; L=$(losetup -f --show $T/img)
mm=$(lsblk -dno MAJ:MIN "$L" | tr -d ' ')
mkdir "$CG"; echo "$mm 1048576" > "$CG/blkio.throttle.write_bps_device"
sh -c "echo \$\$ > $CG/cgroup.procs; exec dd if=/dev/zero of=$L bs=64k count=1000 oflag=direct" 2>/dev/null &
DPID=$!
sleep 3
"$TRIAGE" capture --no-bpf --out "$1" --note "issue 9 item 8: ${NOTE:-}" >/dev/null
