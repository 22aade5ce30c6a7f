#!/usr/bin/env bash
# triage on many hosts with plain ssh: copy the binary, run `triage sixty-second --json` on
# every host at once (one background ssh each), collect the reports, rank them.
#
#   contrib/ssh/triage-ssh.sh HOSTS_FILE OUT_DIR [-- TRIAGE_ARGS...]
#
# HOSTS_FILE: one [user@]host per line (# comments). Reports go to OUT_DIR/reports/HOST.json,
# the ranking to stdout and OUT_DIR/fleet.json. Environment:
#   TRIAGE_BIN         local binary to copy (default: target/release/triage, else `triage` on PATH)
#   TRIAGE_REMOTE_DIR  where it goes on the hosts (default /tmp/triage; removed afterwards)
#   SSH_OPTS           extra ssh options, e.g. "-i key -o StrictHostKeyChecking=accept-new"
# A host that fails is named on stderr; the others are still ranked.
set -uo pipefail

[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
hosts_file=$1 out=$2
shift 2
[ "${1:-}" = "--" ] && shift
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--duration 5)

here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TRIAGE_BIN:-$here/target/release/triage}
[ -x "$bin" ] || bin=$(command -v triage) || { echo "no triage binary (set TRIAGE_BIN)" >&2; exit 1; }
rdir=${TRIAGE_REMOTE_DIR:-/tmp/triage}
# shellcheck disable=SC2206 # word splitting of the options is intended
ssh_opts=(-o BatchMode=yes -o ConnectTimeout=10 ${SSH_OPTS:-})
mkdir -p "$out/reports" "$out/logs"

one() {
    local h=$1 name=${1#*@}
    # The copy goes to a temporary name, then a rename: safe even when hosts share a
    # filesystem, and a running triage is never overwritten.
    # shellcheck disable=SC2029 # the remote side expands $$
    ssh "${ssh_opts[@]}" "$h" "mkdir -p $rdir && cat > $rdir/.triage.\$\$ && chmod 755 $rdir/.triage.\$\$ && mv -f $rdir/.triage.\$\$ $rdir/triage" <"$bin" &&
        ssh "${ssh_opts[@]}" "$h" "$rdir/triage sixty-second --json ${args[*]}" >"$out/reports/$name.json.tmp" &&
        mv -f "$out/reports/$name.json.tmp" "$out/reports/$name.json"
}

pids=()
names=()
while read -r h _; do
    case "$h" in '' | '#'*) continue ;; esac
    # One retry: a lossy or busy link (often the very host being debugged) can drop a
    # connection or stall the copy past the timeout once.
    { one "$h" || { echo "triage-ssh: $h: retrying once" >&2 && one "$h"; }; } \
        >"$out/logs/${h#*@}.log" 2>&1 &
    pids+=($!)
    names+=("$h")
done <"$hosts_file"

failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "triage-ssh: ${names[$i]} failed: $(tail -n 3 "$out/logs/${names[$i]#*@}.log")" >&2
        rm -f "$out/reports/${names[$i]#*@}.json.tmp"
        failed=$((failed + 1))
    fi
done

"$bin" fleet --json "$out/reports" >"$out/fleet.json" 2>/dev/null
"$bin" fleet "$out/reports"
rc=$?
[ $failed -gt 0 ] && echo "triage-ssh: $failed host(s) failed" >&2
exit $rc
