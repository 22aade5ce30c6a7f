#!/usr/bin/env bash
# A private fleet for the tests: N "hosts", each a network namespace with its own PID and UTS
# namespace (so `hostname` and /proc are its own) running its own sshd, all on a bridge that
# lives in a control namespace. Addresses (10.77.0.0/24) exist only inside these namespaces: no
# packet leaves them. One host can carry a fault: a shaped, dropping qdisc (htb + tbf) on its link for traffic
# to a listener in the control namespace, fed by a bounded sender, so TCP retransmits show in
# that host's namespace only.
#
#   lab.sh deps                       install openssh-server, ansible-core, pssh (idempotent)
#   lab.sh up DIR ID N FAULT SECS     build it (state in DIR; ID: a short unique tag; FAULT: the
#                                     faulty host's number, 0 for none; SECS: sender lifetime)
#   lab.sh down DIR                   tear everything down (safe to call twice, or on a half-built lab)
#
# Control-namespace commands: `ip netns exec "$(cat DIR/ctl)" CMD`.
set -euo pipefail

PKGS=(openssh-server openssh-client ansible-core pssh iproute2 python3)

deps() {
    local missing=() p created=""
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "lab: installing ${missing[*]}" >&2
    # openssh-server's postinst would start an sshd on the host's network: forbid daemon starts
    # for this install (the Debian mechanism), unless a policy already exists.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created=1
    fi
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
    [ -n "$created" ] && rm -f /usr/sbin/policy-rc.d
    if [[ " ${missing[*]} " == *" openssh-server "* ]] && command -v systemctl >/dev/null; then
        systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
    fi
    return $rc
}

up() {
    local dir=$1 id=$2 n=$3 fault=$4 secs=$5
    mkdir -p "$dir"
    local ctl="tfl$id-ctl"
    echo "$ctl" >"$dir/ctl"
    : >"$dir/namespaces"
    : >"$dir/pids"
    echo "$ctl" >>"$dir/namespaces"
    ip netns add "$ctl"
    ip -n "$ctl" link set lo up
    ip -n "$ctl" link add br0 type bridge
    ip -n "$ctl" addr add 10.77.0.1/24 dev br0
    ip -n "$ctl" link set br0 up

    ssh-keygen -q -t ed25519 -N '' -C triage-lab -f "$dir/id"
    ssh-keygen -q -t ed25519 -N '' -C triage-lab-host -f "$dir/hostkey"
    cp "$dir/id.pub" "$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
    mkdir -p /run/sshd
    : >"$dir/hosts"
    : >"$dir/inventory"
    echo "[triage_lab]" >>"$dir/inventory"

    local i ns addr
    for i in $(seq 1 "$n"); do
        ns="tfl$id-h$i"
        addr="10.77.0.$((10 + i))"
        echo "$ns" >>"$dir/namespaces"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip link add eth0 netns "$ns" type veth peer name "p$i" netns "$ctl"
        ip -n "$ctl" link set "p$i" master br0 up
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
        cat >"$dir/sshd_h$i.conf" <<CONF
ListenAddress $addr
Port 22
HostKey $dir/hostkey
PidFile none
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
        /usr/sbin/sshd -t -f "$dir/sshd_h$i.conf"
        # Own PID namespace (with /proc remounted) and UTS namespace: triage on this "host"
        # sees its own processes, hostname and network namespace; CPU and memory are the
        # kernel's, shared by all hosts.
        # Bounded like the traffic: even if the test is killed before teardown, nothing of
        # the lab outlives SECS + 60 s (namespaces without processes are then inert).
        ip netns exec "$ns" timeout $((secs + 60)) unshare --pid --fork --kill-child --mount-proc --uts \
            sh -c "hostname h$i && exec /usr/sbin/sshd -D -e -f '$dir/sshd_h$i.conf'" \
            >"$dir/sshd_h$i.log" 2>&1 &
        echo $! >>"$dir/pids"
        echo "$addr" >>"$dir/hosts"
        echo "h$i ansible_host=$addr" >>"$dir/inventory"
    done

    # Wait (bounded) for every sshd to accept connections.
    local deadline=$((SECONDS + 20)) a
    for a in $(cat "$dir/hosts"); do
        until ip netns exec "$ctl" bash -c "exec 3<>/dev/tcp/$a/22" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ]; then
                echo "lab: sshd on $a did not start:" >&2
                cat "$dir"/sshd_h*.log >&2
                return 1
            fi
            sleep 0.2
        done
    done

    if [ "$fault" -gt 0 ]; then
        ns="tfl$id-h$fault"
        # A shaped link with a tiny queue (tbf drops what does not fit, as on a congested
        # link; netem is not in every kernel) for the test traffic only (port 9000): htb
        # sends everything else, ssh included, through an unshaped class.
        ip netns exec "$ns" tc qdisc add dev eth0 root handle 1: htb default 10
        ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:10 htb rate 10gbit quantum 200000
        ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:30 htb rate 4mbit ceil 4mbit
        ip netns exec "$ns" tc qdisc add dev eth0 parent 1:30 handle 30: tbf rate 4mbit burst 3000 limit 6000
        ip netns exec "$ns" tc filter add dev eth0 parent 1: protocol ip prio 1 u32 \
            match ip dport 9000 0xffff flowid 1:30
        ip netns exec "$ctl" timeout "$secs" python3 -c '
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.1", 9000))
s.listen(16)
def drain(c):
    while c.recv(65536):
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
' >"$dir/listener.log" 2>&1 &
        echo $! >>"$dir/pids"
        sleep 0.3
        ip netns exec "$ns" timeout "$secs" python3 -c '
import socket, time, sys
end = time.time() + float(sys.argv[1])
buf = b"x" * 65536
while time.time() < end:
    try:
        c = socket.create_connection(("10.77.0.1", 9000), timeout=5)
        while time.time() < end:
            c.sendall(buf)
    except OSError:
        time.sleep(0.1)
' "$secs" >"$dir/sender.log" 2>&1 &
        echo $! >>"$dir/pids"
    fi
    cat >>"$dir/inventory" <<INV
[triage_lab:vars]
ansible_user=root
ansible_ssh_private_key_file=$dir/id
ansible_ssh_common_args=-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
ansible_python_interpreter=/usr/bin/python3
INV
}

down() {
    local dir=$1 p ns
    # Our own background processes first (by pid), then anything left in our namespaces.
    if [ -f "$dir/pids" ]; then
        for p in $(cat "$dir/pids"); do kill "$p" 2>/dev/null || true; done
    fi
    if [ -f "$dir/namespaces" ]; then
        for ns in $(cat "$dir/namespaces"); do
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        done
        sleep 0.2
        for ns in $(cat "$dir/namespaces"); do
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
}

case "${1:-}" in
deps) deps ;;
up) shift; up "$@" ;;
down) shift; down "$@" ;;
*) echo "usage: lab.sh deps | up DIR ID N FAULT SECS | down DIR" >&2; exit 2 ;;
esac
