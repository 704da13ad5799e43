#!/bin/bash
# test_resumption.sh - the seed's topology for real: HAProxy (mode tcp,
# roundrobin) in front of two hsmkeys-demo-servers on two SoftHSM2 hosts
# holding the same master, clients from hsmkeys-probe.  Asserts, through the
# load balancer, with S1/S2 as hsmkeys-demo-server and, when the module is
# built, as nginx, and with epoch boundaries inside each run (the tokens are
# provisioned by the clone ceremony when hsmkeys-tool is built):
#   - hsmkeys resumes >= 99% of reconnects, TLS 1.3 and TLS 1.2;
#   - the baseline (each server its own random ticket keys) resumes fewer,
#     and a lone client resumes none (the seed's story);
#   - every connection's resumed/full as the server logged it agrees with the
#     client's view, and the backend it named;
#   - the probe's exit status (--min-rate), its summary line and its CSV agree.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/demo/fleet.sh"
source "$HSMKEYS_ROOT/tests/lab/lib-probe.sh"

EPOCH=2          # seconds; short so that every run crosses boundaries
LIFETIME=10      # TLS 1.2 sessions keep their first handshake's time: > run
RUN=4.5          # seconds per probe run: > 2 epochs

if ! command -v haproxy >/dev/null || [ ! -x "$HSMKEYS_BUILD/hsmkeys-demo-server" ] ||
   [ ! -x "$HSMKEYS_BUILD/hsmkeys-probe" ]; then
    tap_skip "resumption through the LB" "haproxy, hsmkeys-demo-server or hsmkeys-probe missing (make; make deps)"
    tap_done; exit
fi
lab_init
fleet_provision
tap_ok $? "S1 and S2 hold the same master: $FLEET_PROVISIONED"
PROBE=$HSMKEYS_BUILD/hsmkeys-probe

# ---- hsmkeys fleet (S1/S2 as hsmkeys-demo-server, then as nginx if built) --
hsmkeys_runs() {
    local kind=$FLEET_SERVER v csv out t0 t1 rc rate n r1 r2
    fleet_start hsmkeys "${EPOCH}s" "${LIFETIME}s"
    tap_ok $? "[$kind] hsmkeys fleet up: LB $FLEET_LB, S1 and S2 from their own tokens"

    for v in 1.3 1.2; do
        csv=$LAB/hsmkeys-$kind-$v.csv out=$LAB/hsmkeys-$kind-$v.out
        t0=$(date +%s)
        "$PROBE" --tls$v -c 2 -p 2 -d $RUN -i 20 --sni example.com --min-rate 99 \
            --csv "$csv" "$FLEET_LB" >"$out" 2>&1
        rc=$?
        t1=$(date +%s)
        sed 's/^/# /' "$out"
        tap_ok $rc "[$kind] hsmkeys TLS $v: probe exits 0 with --min-rate 99 (C1, C2 x 2 parallel through the LB)"
        rate=$(csv_rate "$csv")
        check_ge "$rate" 99; tap_ok $? "[$kind] hsmkeys TLS $v: CSV says $rate% of reconnects resumed (>= 99%)"
        summary_matches_csv "$out" "$csv"; tap_ok $? "[$kind] hsmkeys TLS $v: the probe's summary line matches its CSV"
        [ "$(csv_count "$csv" '$9 == "TLSv'$v'"')" = "$(csv_count "$csv" 1)" ]
        tap_ok $? "[$kind] hsmkeys TLS $v: every connection negotiated TLS $v"
        n=$(csv_epochs "$csv" | wc -l)
        [ "$n" -ge 2 ]; tap_ok $? "[$kind] hsmkeys TLS $v: an epoch boundary inside the run ($n epochs in ticket names)"
        epochs_in_schedule "$csv" $EPOCH "$t0" "$t1"
        tap_ok $? "[$kind] hsmkeys TLS $v: ticket names decode to epochs of the run's schedule"
        r1=$(csv_count "$csv" '$4 == "S1" && $8 == 1') r2=$(csv_count "$csv" '$4 == "S2" && $8 == 1')
        [ "$r1" -gt 0 ] && [ "$r2" -gt 0 ]; tap_ok $? "[$kind] hsmkeys TLS $v: both servers resumed tickets (S1 $r1, S2 $r2)"
        fleet_server_view "$csv"; tap_ok $? "[$kind] hsmkeys TLS $v: every server's view agrees with the client's"
    done
    [ "$(csv_count "$LAB/hsmkeys-$kind-1.2.csv" '$16 == 1')" -gt 0 ]
    tap_ok $? "[$kind] hsmkeys TLS 1.2: tickets of a past epoch were renewed under the current key"
    fleet_stop
}
FLEET_SERVER=demo-server hsmkeys_runs
if [ -f "$FLEET_NGINX_MOD" ] && command -v nginx >/dev/null; then
    FLEET_SERVER=nginx hsmkeys_runs
else
    tap_skip "hsmkeys through the LB with nginx S1/S2" "nginx module not built ($FLEET_NGINX_MOD)"
fi
FLEET_SERVER=demo-server

# ---- baseline: each server its own random ticket keys -----------------------
fleet_start baseline
tap_ok $? "baseline fleet up: LB $FLEET_LB, S1 and S2 with OpenSSL's own ticket keys"
csv=$LAB/baseline.csv out=$LAB/baseline.out
"$PROBE" --tls1.3 -c 2 -p 2 -d 3 -i 20 --sni example.com --min-rate 99 --csv "$csv" "$FLEET_LB" >"$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
[ "$rc" = 1 ]; tap_ok $? "baseline TLS 1.3: probe exits 1 with --min-rate 99 (got $rc)"
grep -q "is below --min-rate" "$out"; tap_ok $? "baseline: the probe says why it failed"
brate=$(csv_rate "$csv") hrate=$(csv_rate "$LAB/hsmkeys-demo-server-1.3.csv")
awk -v b="$brate" -v h="$hrate" 'BEGIN { exit !(b < h) }'
tap_ok $? "baseline resumes fewer: $brate% vs hsmkeys $hrate%"
fleet_server_view "$csv"; tap_ok $? "baseline: every server's view agrees with the client's"
csv=$LAB/lone.csv
"$PROBE" --tls1.2 -n 20 --sni example.com --csv "$csv" -q "$FLEET_LB" >/dev/null 2>&1
tap_ok $? "baseline, one client alone, TLS 1.2: probe exits 0 without --min-rate"
[ "$(csv_count "$csv" '$8 == 1')" = 0 ] && [ "$(csv_count "$csv" '$4 == "S1"')" = 10 ]
tap_ok $? "baseline, one client alone: round robin alternates S1/S2 and nothing resumes"
fleet_server_view "$csv"; tap_ok $? "baseline, one client alone: the servers agree"
fleet_stop
tap_done
