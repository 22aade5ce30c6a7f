#!/usr/bin/env bash
# Collect the DaemonSet's reports (one per node) with kubectl logs and rank them.
#   contrib/kubernetes/collect.sh OUT_DIR [kubectl args, e.g. --context prod]
# Each pod's log is one JSON report; it is saved as OUT_DIR/reports/NODE.json. A pod that has
# not finished its window yet leaves a truncated or empty file: `triage fleet` names it and
# ranks the others. TRIAGE_BIN: the local triage (default: `triage` on PATH).
set -uo pipefail
[ $# -ge 1 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
out=$1
shift
k=(kubectl "$@" -n triage)
bin=${TRIAGE_BIN:-triage}
mkdir -p "$out/reports"
"${k[@]}" rollout status daemonset/triage --timeout=120s >&2 || true
"${k[@]}" get pods -l app.kubernetes.io/name=triage \
    -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}' |
    while read -r pod node; do
        [ -n "$pod" ] || continue
        "${k[@]}" logs "$pod" -c triage >"$out/reports/$node.json" 2>"$out/reports/.$node.err" ||
            echo "collect: no log from $pod on $node: $(cat "$out/reports/.$node.err")" >&2
    done
"$bin" fleet --json "$out/reports" >"$out/fleet.json"
"$bin" fleet "$out/reports"
