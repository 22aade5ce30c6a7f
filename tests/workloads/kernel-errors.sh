#!/bin/bash
# Kernel errors a few seconds before a capture (no device-mapper on this kernel):
# - block I/O errors: a loop device over a 64M sparse file on a 1M tmpfs, written with O_DIRECT
#   (the backing writes fail: "critical space allocation error, dev loopN");
# - a hung task: a writer to a frozen (fsfreeze) ext4 on a second loop device, with
#   kernel.hung_task_timeout_secs=2 for the run;
# - an OOM kill in a v1 memory cgroup (limit 40M, python allocating 200M).
# Everything is torn down. usage: kernel-errors.sh OUTDIR
set -u
OUT=$1
TRIAGE=${TRIAGE:-$(cd "$(dirname "$0")/../.." && pwd)/target/debug/triage}
old_hung=$(cat /proc/sys/kernel/hung_task_timeout_secs)
T=/tmp/triage-kerr.$$
CG=/sys/fs/cgroup/memory/triage-oom-$$
cleanup() {
    echo "$old_hung" > /proc/sys/kernel/hung_task_timeout_secs
    fsfreeze -u $T/mnt 2>/dev/null
    [ -n "${WPID:-}" ] && wait "$WPID" 2>/dev/null
    umount $T/mnt 2>/dev/null
    [ -n "${L1:-}" ] && losetup -d "$L1"
    [ -n "${L2:-}" ] && losetup -d "$L2"
    umount $T/tiny 2>/dev/null
    rm -rf $T
    rmdir "$CG" 2>/dev/null
}
trap cleanup EXIT
"$(dirname "$0")/wait-calm.sh" ${CALM_WAIT:-900} || [ -n "${ANYWAY:-}" ] || exit 1
mkdir -p $T/tiny $T/mnt
mount -t tmpfs -o size=1M tmpfs $T/tiny && truncate -s 64M $T/tiny/img
L1=$(losetup -f --show $T/tiny/img)
dd if=/dev/zero of="$L1" bs=1M count=4 oflag=direct 2>/dev/null
truncate -s 64M $T/fs.img; mkfs.ext4 -q $T/fs.img; L2=$(losetup -f --show $T/fs.img)
mount "$L2" $T/mnt && fsfreeze -f $T/mnt
echo 2 > /proc/sys/kernel/hung_task_timeout_secs
sh -c "exec dd if=/dev/zero of=$T/mnt/f bs=4k count=1 2>/dev/null" &
WPID=$!
mkdir "$CG"; echo 40M > "$CG/memory.limit_in_bytes"; echo 0 > "$CG/memory.swappiness"
sh -c "echo \$\$ > $CG/cgroup.procs; exec python3 -c 'a = bytearray(200 << 20)'" 2>/dev/null
sleep 5
echo "$old_hung" > /proc/sys/kernel/hung_task_timeout_secs
fsfreeze -u $T/mnt; wait "$WPID"; WPID=
# The workload's own mounts and devices go before the capture: only the log stays.
umount $T/mnt; losetup -d "$L2"; L2=; losetup -d "$L1"; L1=; umount $T/tiny
dmesg | grep -E "error, dev|blocked for more|Killed process" | tail -8
"$TRIAGE" capture --no-bpf --out "$OUT" --note "kernel-errors (issue 9 item 5): ${NOTE:-}" >/dev/null
