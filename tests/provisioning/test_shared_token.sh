#!/bin/bash
# test_shared_token.sh - one token shared through `p11-kit server`
# (provisioning/p11kit-share-token.sh): servers that reach it through
# p11-kit-client.so see the same master and resume each other's tickets,
# both as two server contexts in one process and as two processes.
set -u   # no pipefail: "cmd | grep -q" must not fail when grep stops reading early
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
T=$HSMKEYS_BUILD/hsmkeys-tool
TICKET=$HSMKEYS_BUILD/tests/hk-ticket
CLIENT=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/pkcs11)/p11-kit-client.so
if ! command -v p11-kit >/dev/null || [ ! -r "$CLIENT" ]; then
    tap_skip "shared token through p11-kit server" "p11-kit or p11-kit-client.so missing (apt-get install p11-kit)"
    tap_done; exit
fi
lab_init
lab_host S fleet
SOCK=$LAB/srv/pkcs11.sock
mkdir -m 700 "$LAB/srv"
lab_spawn p11srv env SOFTHSM2_CONF="$S_CONF" HSMKEYS_TOOL="$T" \
    bash "$HSMKEYS_ROOT/provisioning/p11kit-share-token.sh" --token S --socket "$SOCK"
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ]; tap_ok $? "p11-kit server listens on its socket"
[ -S "$SOCK" ] || sed 's/^/# /' "$LAB/p11srv.log"

# Clients see only the socket: no SoftHSM2 configuration at all.
export P11_KIT_SERVER_ADDRESS=unix:path=$SOCK
export SOFTHSM2_CONF=$LAB/no-such-softhsm2.conf
CURI="pkcs11:token=S;object=hsmkeys-master?module-path=$CLIENT&pin-source=$S_PIN_FILE"

# The socket exists before the server has initialised its module: wait for the token.
seen=1
for _ in $(seq 1 100); do
    "$T" status --module "$CLIENT" 2>&1 | grep -q "token 'S'" && { seen=0; break; }
    sleep 0.1
done
tap_ok $seen "the token is visible through p11-kit-client.so"
kr=$("$T" verify --module "$CLIENT" --token S --pin-source "$S_PIN_FILE" 2>/dev/null | awk '{print $3}')
kd=$(SOFTHSM2_CONF=$S_CONF "$T" verify --token S --pin-source "$S_PIN_FILE" 2>/dev/null | awk '{print $3}')
[ -n "$kr" ] && [ "$kr" = "$kd" ]; tap_ok $? "same key check value remotely and locally ($kr)"

nr=$("$T" status --uri "$CURI" --domain shared 2>/dev/null | awk '/encrypting now/ {print $NF}')
nd=$(SOFTHSM2_CONF=$S_CONF "$T" status --uri "$S_URI" --domain shared 2>/dev/null | awk '/encrypting now/ {print $NF}')
[ -n "$nr" ] && [ "$nr" = "$nd" ]; tap_ok $? "status shows the same current key name through the socket and locally ($nr)"

for v in "" --tls13; do
    out=$("$TICKET" pair --uri "$CURI" --uri2 "$CURI" --domain shared $v 2>&1)
    printf '%s\n' "$out" | grep -q '^pair ok'
    tap_ok $? "two server contexts on the client module resume each other's tickets ${v:-(TLS 1.2)}"
    printf '%s\n' "$out" | grep -q '^pair ok' || printf '%s\n' "$out" | sed 's/^/# /'
done
r=$("$TICKET" issue --uri "$CURI" --domain shared 2>"$LAB/issue.err" | "$TICKET" resume --uri "$CURI" --domain shared 2>"$LAB/resume.err")
[ "${r%% *}" = resumed ]; tap_ok $? "two server processes on the shared token resume each other's tickets [$r]"
[ "${r%% *}" = resumed ] || sed "s/^/# /" "$LAB/issue.err" "$LAB/resume.err"
r=$("$TICKET" issue --uri "$CURI" --domain shared 2>/dev/null |
    SOFTHSM2_CONF=$S_CONF "$TICKET" resume --uri "$S_URI" --domain shared 2>/dev/null)
[ "${r%% *}" = resumed ]; tap_ok $? "a ticket issued through the socket resumes on the token directly [$r]"

lab_stop p11srv
"$TICKET" pair --uri "$CURI" --uri2 "$CURI" --domain shared >/dev/null 2>&1
[ $? != 0 ]; tap_ok $? "control: with the server stopped the client module has no token"
tap_done
