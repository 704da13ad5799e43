#!/bin/bash
# test_logs.sh - no key bytes and no PIN in any test log.
#
# Needles: the test PINs (tests/lib/softhsm.h and lab.sh's pin files), the
# known test masters of every seed the tests use (SHA-256("hsmkeys test
# master:" || seed)), and the epoch keys the fault and hygiene tests derive
# (SP 800-108 over HMAC-SHA256, docs/DERIVATION.md), each as raw bytes, hex
# (both cases) and base64.  Haystack: every log under BUILD/test-logs (the C
# suites run before this script; integration logs from earlier runs) plus a
# fresh run of the hygiene and open-failure tests, which log errors about
# PINs and keys on purpose.
# Threat handled: a log line (ours or a server's) that leaks a secret.
. "$(dirname "$0")/../lib/lab.sh"
lab_init
mkdir -p "$LAB/logs"
for t in keymem_test openfail_test; do
    if [ -x "$HSMKEYS_BUILD/tests/$t" ]; then
        "$HSMKEYS_BUILD/tests/$t" >"$LAB/logs/$t.log" 2>&1 </dev/null
        tap_ok $? "$t ran with its logs captured"
    else
        tap_ok 1 "$t is built (make tests)"
    fi
done
# Seeds: every lab_host NAME SEED and t_master_from_seed("...") in the tests.
seeds=$(cd "$HSMKEYS_ROOT" && {
    echo fleet; echo hygiene; echo fuzz
    grep -rhoE 't_master_from_seed\("[^"]+"' tests | sed 's/.*("//; s/"$//'
    grep -rhoE 'lab_host [A-Za-z0-9_]+ [A-Za-z0-9._-]+' tests | awk '{print $3}'
} | sort -u)
logs=("$LAB"/logs/*.log)
if [ -d "$HSMKEYS_BUILD/test-logs" ]; then
    while IFS= read -r f; do logs+=("$f"); done < <(find "$HSMKEYS_BUILD/test-logs" -type f -name '*.log')
fi
# Integration labs kept for inspection (LAB_KEEP) hold server logs too.
while IFS= read -r f; do logs+=("$f"); done < <(find "${TMPDIR:-/tmp}" -maxdepth 2 -path '*hsmkeys-lab-*' -name '*.log' -type f 2>/dev/null)
cat > "$LAB/scan.py" <<'PY'
import base64, hashlib, hmac, re, sys
seeds = sys.argv[1].split()
files = sys.argv[2:]
def master(seed):
    return hashlib.sha256(b"hsmkeys test master:" + seed.encode()).digest()
def epoch_keys(m, domain, epoch):
    out = b""
    for i in (1, 2):
        msg = i.to_bytes(4, "big") + b"hsmkeys ticket key v1\x00" + domain + epoch.to_bytes(8, "big") + (512).to_bytes(4, "big")
        out += hmac.new(m, msg, hashlib.sha256).digest()
    return out[:32], out[32:]
secrets = {}
for s in seeds:
    secrets["master of seed %s" % s] = master(s)
def add_epochs(seed, domain, period, t0, first, last):
    m = master(seed)
    for d in range(first, last + 1):
        e = t0 // period + d
        a, h = epoch_keys(m, domain, e)
        secrets["AES key %s/%s/%d" % (seed, domain.decode(), e)] = a
        secrets["HMAC key %s/%s/%d" % (seed, domain.decode(), e)] = h
add_epochs("fleet", b"fault.test", 60, 1700000000 // 60 * 60 + 1, -2, 10)
add_epochs("hygiene", b"hygiene.test", 60, 1700000000 // 60 * 60 + 1, -2, 8)
add_epochs("fuzz", b"fuzz.test", 3600, 1700000000, -5, 2)
needles = []
for what, b in secrets.items():
    needles += [(what, b), (what + " (hex)", b.hex().encode()), (what + " (HEX)", b.hex().upper().encode()),
                (what + " (base64)", base64.b64encode(b).rstrip(b"="))]
for pin in (b"user-pin-1234", b"so-pin-5678"):
    needles.append(("test PIN", pin))
labpin = re.compile(rb"\b(?:pin|so)-[A-Za-z0-9_]+-[0-9]{4,}\b")
bad = 0
for f in files:
    try:
        data = open(f, "rb").read()
    except OSError:
        continue
    for what, n in needles:
        if n in data:
            print("LEAK %s in %s" % (what, f)); bad += 1
    m = labpin.search(data)
    if m:
        print("LEAK lab PIN-like string in %s" % f); bad += 1
print("scanned %d logs for %d needles" % (len(files), len(needles)))
sys.exit(1 if bad else 0)
PY
# The scanner must see a planted leak, or its silence means nothing.
python3 -c 'import hashlib; print("key=" + hashlib.sha256(b"hsmkeys test master:fleet").hexdigest())' > "$LAB/planted.txt"
python3 "$LAB/scan.py" "$seeds" "$LAB/planted.txt" >/dev/null
[ $? = 1 ]; tap_ok $? "the scanner finds a planted master"
out=$(python3 "$LAB/scan.py" "$seeds" "${logs[@]}")
rc=$?
echo "$out" | sed 's/^/# /'
tap_ok $rc "no key bytes, master or PIN in any test log"
tap_done
