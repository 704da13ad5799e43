#!/usr/bin/env python3
"""Generate docs/DERIVATION.md's test vectors with Python's hmac module: an
implementation independent of the C code (kdf.c) and of the token.
Masters here are public test values: never use them for a real fleet."""
import hashlib, hmac, struct

def prf(k, m):
    return hmac.new(k, m, hashlib.sha256).digest()

def kdf(k, label, context, nbytes):
    out, i = b"", 1
    while len(out) < nbytes:
        out += prf(k, struct.pack(">I", i) + label + b"\x00" + context + struct.pack(">I", nbytes * 8))
        i += 1
    return out[:nbytes]

def master(seed):
    return hashlib.sha256(b"hsmkeys test master:" + seed.encode()).digest()

cases = [("fleet", "www.example.com", 0), ("fleet", "www.example.com", 1),
         ("fleet", "www.example.com", 472222), ("fleet", "api.example.com", 472222),
         ("other", "www.example.com", 472222), ("fleet", "www.example.com", 2**48 - 1)]
import sys
if len(sys.argv) > 1 and sys.argv[1] == "cache":
    # the sealed session cache keys (docs/DERIVATION.md), tests/data/cache-key-vectors.txt
    for seed, domain, epoch in cases[:5]:
        m = master(seed)
        keys = kdf(m, b"hsmkeys session cache v1", domain.encode() + struct.pack(">Q", epoch), 64)
        print(f"seed = {seed}\ndomain = {domain}\nepoch = {epoch}\n"
              f"seal = {keys[:32].hex()}\nid_key = {keys[32:].hex()}\n")
    sys.exit(0)
for seed, domain, epoch in cases:
    m = master(seed)
    tag = kdf(m, b"hsmkeys key name v1", domain.encode(), 9)
    keys = kdf(m, b"hsmkeys ticket key v1", domain.encode() + struct.pack(">Q", epoch), 64)
    name = b"\x01" + tag + struct.pack(">Q", epoch)[2:]
    kcv = kdf(m, b"hsmkeys key check value v1", b"", 8)
    print(f"seed = {seed}\nmaster = {m.hex()}\ndomain = {domain}\nepoch = {epoch}\n"
          f"name = {name.hex()}\naes = {keys[:32].hex()}\nhmac = {keys[32:].hex()}\nkcv = {kcv.hex()}\n")

