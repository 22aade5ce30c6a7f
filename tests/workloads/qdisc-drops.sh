#!/bin/bash
# Issue 9 item 7: TCP retransmits caused by a local queueing discipline dropping packets.
#
#   qdisc-drops.sh up        build the topology
#   qdisc-drops.sh run SECS [FLOWS]  FLOWS (4) bulk TCP transfers across it for SECS seconds
#   qdisc-drops.sh down      remove everything (idempotent)
#
# Topology (everything but the shaped interface lives in namespaces):
#   netns tq-tx (sender 10.203.1.2) --veth tqs1/tqs0--> ROOT (forwards)
#        --veth tq0 [tbf rate 8mbit burst 32kbit latency 20ms] / tq1--> netns tq-rx (10.203.0.2)
# The root namespace forwards the sender's segments out of tq0, whose tbf drops what exceeds
# its rate: the sender's TCP sees the loss and retransmits (in tq-tx), the qdisc counts the
# drops on tq0 in the root namespace, where `triage capture` reads.
# Needs: iproute2 (ip, tc), python3. The live test (tests/qdisc.rs) builds the same topology
# with the repo's own workload binary (`triage-workload tcp-sink|tcp-send`).
set -euo pipefail
cmd=${1:-}
down() {
    ip netns del tq-tx 2>/dev/null || true
    ip netns del tq-rx 2>/dev/null || true
    ip link del tq0 2>/dev/null || true
    ip link del tqs0 2>/dev/null || true
}
case "$cmd" in
up)
    down
    ip netns add tq-tx
    ip netns add tq-rx
    ip link add tqs0 type veth peer name tqs1 netns tq-tx
    ip link add tq0 type veth peer name tq1 netns tq-rx
    ip addr add 10.203.1.1/24 dev tqs0
    ip addr add 10.203.0.1/24 dev tq0
    ip link set tqs0 up
    ip link set tq0 up
    ip -n tq-tx addr add 10.203.1.2/24 dev tqs1
    ip -n tq-tx link set tqs1 up
    ip -n tq-tx link set lo up
    ip -n tq-tx route add default via 10.203.1.1
    ip -n tq-rx addr add 10.203.0.2/24 dev tq1
    ip -n tq-rx link set tq1 up
    ip -n tq-rx link set lo up
    ip -n tq-rx route add default via 10.203.0.1
    # IPv4 forwarding is decided per input interface: only these two forward, the host's own
    # net.ipv4.ip_forward is left alone.
    sysctl -qw net.ipv4.conf.tqs0.forwarding=1 net.ipv4.conf.tq0.forwarding=1
    tc qdisc add dev tq0 root tbf rate 8mbit burst 32kbit latency 20ms
    ;;
run)
    secs=${2:-20}
    flows=${3:-4}
    ip netns exec tq-rx python3 -c '
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.203.0.2", 5201)); s.listen(4)
def sink(c):
    while c.recv(1 << 16): pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=sink, args=(c,), daemon=True).start()
' &
    rx=$!
    sleep 0.5
    ip netns exec tq-tx python3 -c '
import socket, sys, threading, time
end = time.time() + float(sys.argv[1])
buf = b"x" * (1 << 16)
def flow():
    while time.time() < end:
        c = socket.create_connection(("10.203.0.2", 5201))
        c.settimeout(2)
        try:
            while time.time() < end: c.sendall(buf)
        except OSError: pass
        c.close()
ts = [threading.Thread(target=flow) for _ in range(int(sys.argv[2]))]
for t in ts: t.start()
for t in ts: t.join()
' "$secs" "$flows"
    kill "$rx" 2>/dev/null || true
    wait "$rx" 2>/dev/null || true
    ;;
down)
    down
    ;;
*)
    echo "usage: $0 up | run SECS | down" >&2
    exit 2
    ;;
esac
