#!/bin/bash
# run-demo.sh - the seed scenario live (make demo): two SoftHSM2 "hosts" S1
# and S2 given the same master by the clone ceremony, HAProxy as the TCP
# round-robin LB (127.0.0.10), HTTPS servers S1 (127.0.0.11) and S2
# (127.0.0.12), and clients C1 and C2 (hsmkeys-probe, two connections at
# once each, like the busy servers of the seed).  Two runs of the same load:
# baseline (each server its own random ticket keys) then hsmkeys (short
# epochs, boundaries inside the run); then the tables and one summary line.
# Last, session-ID clients (TLS 1.2, no ticket extension): 20 reconnects
# through the LB, baseline vs hsmkeys with the sealed session cache on a
# throwaway Redis (nginx servers only).
#
# Threat handled: the demo touches only what it starts.  Everything lives in
# one temp dir removed at exit, processes are stopped by recorded PID
# (tests/lib/lab.sh), PINs stay in 0600 files of that dir, and no key exists
# outside the tokens (the servers' TLS certificates are ephemeral, in memory).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HSMKEYS_ROOT=$ROOT HSMKEYS_BUILD=${HSMKEYS_BUILD:-$ROOT/build}
source "$ROOT/tests/lib/lab.sh"
source "$ROOT/demo/fleet.sh"
source "$ROOT/tests/lab/lib-probe.sh"
source "$ROOT/tests/sesscache/sc_lab.sh"

EPOCH=${DEMO_EPOCH:-3}           # seconds per epoch (production: 3600)
LIFETIME=$((EPOCH * 4))          # ticket lifetime (production: 7200)
RUN=${DEMO_RUN:-8}               # seconds per run: crosses >= 2 epoch boundaries
PROBE_ARGS=(-c 2 -p 2 -i 40 -d "$RUN" --sni example.com)

die() { echo "demo: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
for b in hsmkeys-probe hsmkeys-demo-server hsmkeys-tool tests/t-token; do
    [ -x "$HSMKEYS_BUILD/$b" ] || die "$HSMKEYS_BUILD/$b is missing: run 'make' first"
done
command -v haproxy >/dev/null || die "haproxy is not installed: run 'make deps' (as root)"
lab_init

step "1/5 two hosts: SoftHSM2 tokens S1 and S2"
fleet_provision || die "provisioning failed"
echo "$FLEET_PROVISIONED"

run() { # MODE: one run of the clients through the LB; prints the probe's table
    local mode=$1
    if [ "$mode" = hsmkeys ]; then
        fleet_start hsmkeys "${EPOCH}s" "${LIFETIME}s" || die "the hsmkeys fleet did not start"
    else
        fleet_start baseline || die "the baseline fleet did not start"
    fi
    # Warm-up, not counted: 4 connections straight to each server, so that
    # process start-up costs (first handshake of each worker) do not become
    # the medians of a run whose only full handshakes are the first ones.
    local port=${FLEET_LB##*:} s
    for s in "$FLEET_S1_ADDR" "$FLEET_S2_ADDR"; do
        "$HSMKEYS_BUILD/hsmkeys-probe" -c 4 -n 1 -q --sni example.com "$s:$port" >/dev/null 2>&1
    done
    : > "$LAB/$mode-S1.conns"; : > "$LAB/$mode-S2.conns"
    echo "LB $FLEET_LB (HAProxy, mode tcp, roundrobin) -> S1 $FLEET_S1_ADDR, S2 $FLEET_S2_ADDR ($FLEET_SERVER);" \
         "C1 and C2 reconnect for ${RUN}s, 2 connections at once each"
    "$HSMKEYS_BUILD/hsmkeys-probe" "${PROBE_ARGS[@]}" --csv "$LAB/$mode.csv" "$FLEET_LB" \
        > "$LAB/$mode.out" 2>&1
    local rc=$?
    sed -n '/^per client:/,$p' "$LAB/$mode.out"
    [ "$rc" = 0 ] || die "the probe failed (exit $rc): $(tail -n 2 "$LAB/$mode.out")"
    fleet_server_view "$LAB/$mode.csv" || echo "demo: WARNING: the servers' view differs from the clients'" >&2
    fleet_stop
}

step "2/5 baseline: each server with OpenSSL's own random ticket keys (the seed's problem)"
run baseline

step "3/5 hsmkeys: both servers derive ticket keys in their token, epoch ${EPOCH}s, lifetime ${LIFETIME}s"
run hsmkeys
epochs=$(csv_epochs "$LAB/hsmkeys.csv" | tr '\n' ' ')
n=$(csv_epochs "$LAB/hsmkeys.csv" | wc -l)
echo "epochs seen in ticket names: ${epochs}($((n - 1)) boundaries crossed during the run)"
grep -h "hsmkeys stats" "$LAB"/hsmkeys-S?.log 2>/dev/null | sed 's/^/  /'

step "4/5 summary"
b=$(csv_rate "$LAB/baseline.csv") h=$(csv_rate "$LAB/hsmkeys.csv")
printf '%-9s %-4s %6s %6s %8s %8s %9s %11s\n' run who conns full resumed rate "full ms" "resumed ms"
for mode in baseline hsmkeys; do
    # the probe's own rows (per client, per backend): name conns full resumed
    # failed rate full-ms resumed-ms renewals
    for who in C1 C2 S1 S2; do
        awk -v m="$mode" -v w="$who" '$1 == w && NF == 9 {
            printf "%-9s %-4s %6s %6s %8s %8s %9s %11s\n", m, w, $2, $3, $4, $6, $7, $8; exit }' "$LAB/$mode.out"
    done
done
echo
echo "baseline $b% resumed -> hsmkeys $h% resumed"
if [ "$FLEET_SERVER" != nginx ]; then
    echo "(S1 and S2 ran as hsmkeys-demo-server; without DEMO_NGINX=0, 'make demo' runs them as nginx with the hsmkeys module)"
fi

step "5/5 session-ID clients: TLS 1.2 without tickets (openssl s_client -tls1_2 -no_ticket), 20 reconnects through the LB"
if [ "$FLEET_SERVER" != nginx ] || [ -n "$(sc_missing)" ]; then
    echo "skipped: needs S1/S2 as nginx and redis-server ($(sc_missing))"
else
    SC_SNI=$FLEET_DOMAIN
    redis_start R || die "redis-server did not start"
    fleet_start baseline || die "the baseline fleet did not start"
    sc_chain "$FLEET_LB" "$LAB/sid-baseline.sess" 20 > "$LAB/sid-baseline.out"; sed 's/^# /  /' "$LAB/sid-baseline.out"
    sb=$SC_REUSED
    fleet_stop
    FLEET_SC="hsmkeys_session_cache redis://127.0.0.1:$R_PORT password_file=$R_PW timeout=5ms;"
    fleet_start hsmkeys "${EPOCH}s" "${LIFETIME}s" || die "the hsmkeys fleet did not start"
    sc_chain "$FLEET_LB" "$LAB/sid-hsmkeys.sess" 20 > "$LAB/sid-hsmkeys.out"; sed 's/^# /  /' "$LAB/sid-hsmkeys.out"
    sh=$SC_REUSED
    echo "  what Redis holds (one entry per session; the session ID and master key of the client's"
    echo "  saved session are nowhere in it): $(rstore R search "$LAB/sid-hsmkeys.sess")"
    rstore R dump | head -2 | awk '{ printf "    %s  %.48s... (%d bytes, TTL %ss)\n", $1, $2, length($2) / 2, $3 }'
    fleet_stop
    echo
    echo "session-ID clients: baseline $sb/20 resumed -> hsmkeys sealed session cache $sh/20 resumed"
fi
