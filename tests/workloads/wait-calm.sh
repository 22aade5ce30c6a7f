#!/bin/bash
# Wait (up to ${1:-600} s) until the shared machine is calm: at most 1 runnable task (besides
# us) in 5 consecutive samples 0.5 s apart, so a capture shows the fault, not others' builds.
deadline=$(( $(date +%s) + ${1:-600} )); calm=0
while [ "$(date +%s)" -lt $deadline ]; do
    r=$(awk '/^procs_running/{print $2}' /proc/stat)
    if [ "$r" -le 2 ]; then calm=$((calm+1)); else calm=0; fi
    [ $calm -ge 5 ] && exit 0
    sleep 0.5
done
echo "machine never calm" >&2; exit 1
