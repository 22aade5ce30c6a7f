#!/usr/bin/env python3
"""28k TIME_WAIT sockets on 8 server-side local ports (40001-40008 on 127.0.0.1, inside the
ephemeral range): the servers close first, so TIME_WAIT stays on their side. Then 200 new
connects to each port must still succeed (no exhaustion). Prints the counts; exits when done
(the TIME_WAIT sockets live 60 s in the kernel, no process holds them)."""
import socket, threading, sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 28000
PORTS = list(range(40001, 40009))
stop = False

def serve(ls):
    while not stop:
        try:
            c, _ = ls.accept()
        except OSError:
            return
        c.sendall(b"x")
        c.close()  # the server closes first: TIME_WAIT on the server side

servers = []
for p in PORTS:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", p))
    ls.listen(4096)
    servers.append(ls)
    threading.Thread(target=serve, args=(ls,), daemon=True).start()

def connect(p):
    s = socket.create_connection(("127.0.0.1", p))
    s.recv(1)
    s.recv(1)  # EOF
    s.close()

for i in range(N):
    connect(PORTS[i % len(PORTS)])
ok = 0
for i in range(200):
    try:
        connect(PORTS[i % len(PORTS)])
        ok += 1
    except OSError as e:
        print("connect failed:", e)
print(f"{N} connections closed by the servers; {ok} of 200 new connects succeeded")
stop = True
for ls in servers:
    ls.close()
