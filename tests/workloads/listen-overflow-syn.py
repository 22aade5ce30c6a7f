#!/usr/bin/env python3
"""A listener on 127.0.0.1:40100 with backlog 4 that never accepts, and 300 non-blocking
connects to it: the accept queue overflows and the clients' SYNs are retransmitted. Runs for
argv[1] seconds, then closes everything."""
import socket, sys, time
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 40100)); ls.listen(4)
cs = []
end = time.time() + float(sys.argv[1] if len(sys.argv) > 1 else 12)
while time.time() < end:
    for _ in range(20):
        c = socket.socket(); c.setblocking(False)
        try:
            c.connect(("127.0.0.1", 40100))
        except BlockingIOError:
            pass
        cs.append(c)
    time.sleep(0.2)
for c in cs:
    c.close()
ls.close()
