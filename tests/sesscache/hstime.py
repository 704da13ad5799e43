#!/usr/bin/env python3
"""hstime.py - session-ID-only TLS 1.2 clients (no ticket extension) that
time each handshake (TCP connect to handshake done) and reuse the last
session they got, as a reconnecting client does.

  hstime.py HOST:PORT COUNT [INTERVAL_MS [SNI]]
prints: n=N failed=F reused=R max_ms=M p50_ms=P slowest=[...]
"""
import socket, ssl, sys, time

addr, count = sys.argv[1], int(sys.argv[2])
interval = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.02
sni = sys.argv[4] if len(sys.argv) > 4 else "fleet.hsmkeys.test"
host, port = addr.rsplit(":", 1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.options |= ssl.OP_NO_TICKET
sess, times, failed, reused = None, [], 0, 0
for i in range(count):
    try:
        t0 = time.monotonic()
        raw = socket.create_connection((host, int(port)), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname=sni, session=sess)
        times.append((time.monotonic() - t0) * 1000)
        reused += s.session_reused
        sess = s.session
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while s.recv(4096):
            pass
        s.close()
    except Exception as e:
        failed += 1
        print("# connection %d failed: %s" % (i, e), file=sys.stderr)
    time.sleep(interval)
times.sort()
print("n=%d failed=%d reused=%d max_ms=%.1f p50_ms=%.1f slowest=%s" % (
    count, failed, reused, times[-1] if times else -1, times[len(times) // 2] if times else -1,
    [round(t, 1) for t in times[-5:]]))
