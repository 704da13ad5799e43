#!/usr/bin/env python3
"""rstore.py - the session cache tests' view of the Redis store (RESP over
TCP, binary-safe, the password read from a 0600 file, never from argv).

  rstore.py PORT PWFILE dump             one line per key: KEY HEXVALUE TTL
  rstore.py PORT PWFILE keys             one key per line (SCAN, like redis-cli --scan)
  rstore.py PORT PWFILE get KEY          hex value ("" if none)
  rstore.py PORT PWFILE set KEY HEX      value, keeping the key's TTL (KEEPTTL)
  rstore.py PORT PWFILE persist KEY      drop the key's TTL
  rstore.py PORT PWFILE flush            FLUSHALL
  rstore.py PORT PWFILE search SESSFILE  does any key or value hold the session
                                         ID or master key of an `openssl sess_id`
                                         file (raw bytes or hex text)? prints
                                         "clean N" (N entries) or "FOUND ..."
"""
import socket, subprocess, sys

def cmd(sock, f, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return reply(f)

def reply(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [reply(f) for _ in range(n)]
    raise RuntimeError("bad reply %r" % line)

def keys(s, f):
    cur, out = b"0", []
    while True:
        cur, ks = cmd(s, f, "SCAN", cur, "COUNT", "1000")
        out += ks
        if cur == b"0":
            return out

def sess_secrets(path):
    txt = subprocess.run(["openssl", "sess_id", "-in", path, "-noout", "-text"],
                         capture_output=True, text=True, check=True).stdout
    got = {}
    for line in txt.splitlines():
        line = line.strip()
        for tag in ("Session-ID:", "Master-Key:"):
            if line.startswith(tag) and line[len(tag):].strip():
                got[tag[:-1]] = bytes.fromhex(line[len(tag):].strip())
    return got

def main():
    port, pwfile, op = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    f = s.makefile("rb")
    cmd(s, f, "AUTH", open(pwfile, "rb").read().strip())
    if op == "keys":
        for k in keys(s, f):
            print(k.decode(errors="replace"))
    elif op == "dump":
        for k in keys(s, f):
            v = cmd(s, f, "GET", k)
            print(k.decode(errors="replace"), (v or b"").hex(), cmd(s, f, "TTL", k))
    elif op == "get":
        v = cmd(s, f, "GET", sys.argv[4])
        print((v or b"").hex())
    elif op == "set":
        cmd(s, f, "SET", sys.argv[4], bytes.fromhex(sys.argv[5]), "KEEPTTL")
    elif op == "persist":
        cmd(s, f, "PERSIST", sys.argv[4])
    elif op == "flush":
        cmd(s, f, "FLUSHALL")
    elif op == "search":
        secrets = sess_secrets(sys.argv[4])
        if set(secrets) != {"Session-ID", "Master-Key"}:
            print("NO-SECRETS in", sys.argv[4], sorted(secrets))
            sys.exit(1)
        ks = keys(s, f)
        found = []
        for k in ks:
            v = cmd(s, f, "GET", k) or b""
            for name, b in secrets.items():
                for form in (b, b.hex().encode(), b.hex().upper().encode()):
                    if form in k or form in v:
                        found.append("%s in %s" % (name, k.decode(errors="replace")))
        if found:
            print("FOUND", "; ".join(sorted(set(found))))
            sys.exit(1)
        print("clean", len(ks))
    else:
        sys.exit("unknown operation " + op)

main()
