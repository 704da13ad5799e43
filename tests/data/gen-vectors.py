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

def chain_next(s, g, x):
    return kdf(s, b"hsmkeys chain v1", struct.pack(">IQ", g, x + 1), 32)

def xor(a, b):
    return bytes(p ^ q for p, q in zip(a, b))

def chain_cases():
    """The forward-erasable vectors (docs/DERIVATION.md, tests/data/chain-vectors.txt).
    States are public test values too: S(g, x0) = SHA-256("hsmkeys test state:" || seed)."""
    for seed, domain, g, x0, steps in [("fleet", "www.example.com", 1, 472222, 3),
                                       ("fleet", "api.example.com", 2, 0, 2)]:
        m = master(seed)
        s = hashlib.sha256(b"hsmkeys test state:" + seed.encode()).digest()
        tag = kdf(m, b"hsmkeys key name v2", domain.encode(), 9)
        for x in range(x0, x0 + steps):
            c = domain.encode() + struct.pack(">Q", x)
            keys = xor(kdf(m, b"hsmkeys ticket key v2", c, 64),
                       kdf(s, b"hsmkeys state ticket key v1", c, 64))
            cache = xor(kdf(m, b"hsmkeys session cache v2", c, 64),
                        kdf(s, b"hsmkeys state session cache v1", c, 64))
            name = b"\x01" + tag + struct.pack(">Q", x)[2:]
            ekcv = prf(keys, b"hsmkeys epoch check value v1")[:8]
            print(f"seed = {seed}\nmaster = {m.hex()}\ndomain = {domain}\ngeneration = {g}\n"
                  f"epoch = {x}\nstate = {s.hex()}\nname = {name.hex()}\naes = {keys[:32].hex()}\n"
                  f"hmac = {keys[32:].hex()}\ncache = {cache.hex()}\nepoch_kcv = {ekcv.hex()}\n")
            s = chain_next(s, g, x)

import sys
if len(sys.argv) > 1 and sys.argv[1] == "chain":
    chain_cases()
    sys.exit(0)
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

