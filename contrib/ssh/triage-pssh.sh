#!/usr/bin/env bash
# triage on many hosts with parallel-ssh (Debian/Ubuntu package `pssh`): copy the binary to
# every host at once, run `triage sixty-second --json` on every host at once, rank the reports.
#
#   contrib/ssh/triage-pssh.sh HOSTS_FILE OUT_DIR [-- TRIAGE_ARGS...]
#
# HOSTS_FILE: parallel-ssh's host file ([user@]host[:port] per line). Reports go to
# OUT_DIR/reports/HOST (parallel-ssh -o names them), the ranking to stdout and OUT_DIR/fleet.json.
# Environment:
#   TRIAGE_BIN         local binary to copy (default: target/release/triage, else `triage` on PATH)
#   TRIAGE_REMOTE_DIR  where it goes on the hosts (default /tmp/triage)
#   SSH_OPTS           extra ssh options, e.g. "-i key -o StrictHostKeyChecking=accept-new"
#   PSSH_PAR           parallelism (default 64); PSSH_TIMEOUT per host seconds (default 120)
set -uo pipefail

[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
hosts_file=$1 out=$2
shift 2
[ "${1:-}" = "--" ] && shift
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--duration 5)

here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TRIAGE_BIN:-$here/target/release/triage}
[ -x "$bin" ] || bin=$(command -v triage) || { echo "no triage binary (set TRIAGE_BIN)" >&2; exit 1; }
pssh=$(command -v parallel-ssh || command -v pssh) || { echo "parallel-ssh not found (apt-get install pssh)" >&2; exit 1; }
rdir=${TRIAGE_REMOTE_DIR:-/tmp/triage}
common=(-h "$hosts_file" -p "${PSSH_PAR:-64}" -t "${PSSH_TIMEOUT:-120}" -O BatchMode=yes)
[ -n "${SSH_OPTS:-}" ] && common+=(-x "$SSH_OPTS")
mkdir -p "$out/reports" "$out/errors"

# The binary goes to every host on stdin (-I), to a temporary name and then a rename: one
# transfer per host, and safe even when hosts share a filesystem.
"$pssh" "${common[@]}" -I -e "$out/errors" \
    "mkdir -p $rdir && cat > $rdir/.triage.\$\$ && chmod 755 $rdir/.triage.\$\$ && mv -f $rdir/.triage.\$\$ $rdir/triage" \
    <"$bin" >/dev/null || echo "triage-pssh: the copy failed on some hosts (see $out/errors)" >&2

"$pssh" "${common[@]}" -o "$out/reports" -e "$out/errors" \
    "$rdir/triage sixty-second --json ${args[*]}" >"$out/pssh.log" ||
    echo "triage-pssh: some hosts failed (see $out/pssh.log and $out/errors)" >&2

# A host that failed leaves an empty or partial file: `triage fleet` names it and skips it.
"$bin" fleet --json "$out/reports" >"$out/fleet.json" 2>/dev/null
"$bin" fleet "$out/reports"
