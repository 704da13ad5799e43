#!/bin/bash
# soak.sh - `make soak`: the seed's fleet under sustained load with short
# epochs, checking that resumption never degrades and that nothing leaks.
#
# Topology (demo/fleet.sh, loopback only): HAProxy mode tcp roundrobin on
# 127.0.0.10 in front of two hsmkeys-demo-servers S1 (127.0.0.11) and S2
# (127.0.0.12), each on its own SoftHSM2 token holding the same master
# (lab_host, same seed); epoch 3 s, ticket lifetime 9 s.  Two clients C1, C2
# (hsmkeys-probe -c 2, one connection at a time each, SOAK_INTERVAL_MS
# between connections) reconnect for SOAK_SECONDS: the first half TLS 1.3,
# the second half TLS 1.2.  Before that, an uncounted warm-up of both
# versions.  Every SOAK_SAMPLE seconds: VmRSS, open fds and threads of S1,
# S2 and HAProxy.  Asserts (TAP):
#   - no connection failed; the servers' view agrees with the clients' for
#     every connection;
#   - every reconnect whose offered ticket is inside the window resumed
#     (>= SOAK_MIN_RATE %).  Inside the window: the ticket's key epoch is in
#     [e - ceil(lifetime/epoch), e + 1] and, for TLS 1.2, the session is not
#     older than the lifetime (OpenSSL keeps a TLS 1.2 session's first
#     handshake time across ticket renewals, so such sessions must get a full
#     handshake; they are counted and reported, see docs/SOAK.md);
#   - the servers' hsmkeys counters agree: no ticket refused (foreign, out
#     of window, token unavailable), no token error, every ticket the fleet
#     key decrypted resumed except exactly those expired TLS 1.2 sessions,
#     token derivations bounded by the epochs elapsed (about one per epoch),
#     not by the number of connections;
#   - memory flat: quiescent RSS after the run <= after the warm-up +
#     SOAK_RSS_MARGIN_KB; fds and threads flat (+-SOAK_FD_MARGIN).
# Ends with a summary and "N passed, N failed" (the line .ci/run totals).
#
# Knobs: SOAK_SECONDS (180), SOAK_INTERVAL_MS (100), SOAK_SAMPLE (10),
# SOAK_WARMUP (8, seconds, split between the versions), SOAK_MIN_RATE (99.5),
# SOAK_RSS_MARGIN_KB (2048), SOAK_FD_MARGIN (2), LAB_KEEP=1 keeps the lab dir
# (CSVs, samples, server logs).
#
# Threat handled: the soak touches only what it starts.  All processes are
# started with lab_spawn and stopped by recorded PID (tests/lib/lab.sh), the
# PINs stay in the lab's 0600 files (the servers read them via the URI), and
# everything lives in one temp dir removed at exit.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export HSMKEYS_ROOT=${HSMKEYS_ROOT:-$ROOT} HSMKEYS_BUILD=${HSMKEYS_BUILD:-$ROOT/build}
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
FLEET_SERVER=demo-server          # the soak measures our code, not nginx's
source "$HSMKEYS_ROOT/demo/fleet.sh"
source "$HSMKEYS_ROOT/tests/lab/lib-probe.sh"

SOAK_SECONDS=${SOAK_SECONDS:-180}
SOAK_INTERVAL_MS=${SOAK_INTERVAL_MS:-100}
SOAK_SAMPLE=${SOAK_SAMPLE:-10}
SOAK_WARMUP=${SOAK_WARMUP:-8}
SOAK_MIN_RATE=${SOAK_MIN_RATE:-99.5}
SOAK_RSS_MARGIN_KB=${SOAK_RSS_MARGIN_KB:-2048}
SOAK_FD_MARGIN=${SOAK_FD_MARGIN:-2}
EPOCH=3 LIFETIME=9                  # seconds (production: 3600 / 7200)
KEYWIN=$(( (LIFETIME + EPOCH - 1) / EPOCH ))   # past epochs accepted: ceil(L/P)
AGEMIN=$(( LIFETIME / EPOCH ))      # epochs apart before a session can be older than L
PROBE=$HSMKEYS_BUILD/hsmkeys-probe
PROCS="S1 S2 LB"
NFAIL=0
check() { [ "$1" = 0 ] || NFAIL=$((NFAIL + 1)); tap_ok "$@"; }

die() { echo "Bail out! soak: $*"; echo "$((_tap_n - NFAIL)) passed, $((NFAIL + 1)) failed"; exit 1; }
case $SOAK_SECONDS in ''|*[!0-9]*) die "SOAK_SECONDS must be a whole number of seconds";; esac
[ "$SOAK_SECONDS" -ge 20 ] || die "SOAK_SECONDS must be at least 20 (each half must cross epochs)"
for b in hsmkeys-probe hsmkeys-demo-server tests/t-token; do
    [ -x "$HSMKEYS_BUILD/$b" ] || die "$HSMKEYS_BUILD/$b is missing (make soak builds it)"
done
command -v haproxy >/dev/null || die "haproxy is not installed (make deps)"
T_BEGIN=$SECONDS
HALF1=$(( SOAK_SECONDS / 2 )) HALF2=$(( SOAK_SECONDS - SOAK_SECONDS / 2 ))

lab_init
lab_host S1 soak-fleet && lab_host S2 soak-fleet
check $? "S1 and S2: own SoftHSM2 tokens holding the same master"
fleet_start hsmkeys "${EPOCH}s" "${LIFETIME}s" || die "the fleet did not start"
# fleet.sh names the processes MODE-NAME; the LB is haproxy -db (one process).
pid_of() { lab_pid "hsmkeys-$1"; }
check 0 "fleet up: LB $FLEET_LB (HAProxy pid $(pid_of LB)), S1 pid $(pid_of S1), S2 pid $(pid_of S2); epoch ${EPOCH}s, lifetime ${LIFETIME}s"

# ---- sampling ---------------------------------------------------------------
# One line per process: LABEL NAME RSS_KB FDS THREADS (empty fields if gone).
sample() {
    local label=$1 n pid rss thr fds
    for n in $PROCS; do
        pid=$(pid_of "$n")
        rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null)
        thr=$(awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status" 2>/dev/null)
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        [ -n "$rss" ] || fds=""
        echo "$label $n ${rss:--} ${fds:--} ${thr:--}" >> "$LAB/samples"
    done
}
get() { awk -v l="$1" -v n="$2" -v f="$3" '$1 == l && $2 == n { print $f }' "$LAB/samples"; }

# quiesce: wait until no connection is open on the servers (HAProxy closes
# both sides, servers' threads exit), at most 10 s.
quiesce() {
    local n
    for _ in $(seq 1 20); do
        sleep 0.5
        n=$(ss -Htn state established "( sport = :${FLEET_LB##*:} )" 2>/dev/null | wc -l)
        [ "$n" = 0 ] && break
    done
    sleep 1
}

# run_probe TAG VERSION SECONDS: C1, C2 through the LB, sampling meanwhile.
T0=0 NEXT=0
run_probe() {
    local tag=$1 v=$2 dur=$3 pid
    lab_spawn "probe-$tag" "$PROBE" "--tls$v" -c 2 -p 1 -i "$SOAK_INTERVAL_MS" -d "$dur" \
        --sni "$FLEET_DOMAIN" --csv "$LAB/$tag.csv" "$FLEET_LB"
    pid=$(lab_pid "probe-$tag")
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$tag" != warmup ] && [ $SECONDS -ge $NEXT ]; then
            sample "t=$((SECONDS - T0))s"
            NEXT=$((NEXT + SOAK_SAMPLE))
        fi
        sleep 1
    done
    wait "$pid"
    local rc=$?
    rm -f "$LAB/pids/probe-$tag"
    return $rc
}

# ---- warm-up (not counted) --------------------------------------------------
W=$(( (SOAK_WARMUP + 1) / 2 ))
run_probe warmup 1.3 "$W" && run_probe warmup 1.2 "$W"
check $? "warm-up: ${W}s TLS 1.3 + ${W}s TLS 1.2 through the LB, not counted"
quiesce
sample start
T0=$SECONDS NEXT=$((SECONDS + SOAK_SAMPLE))

# ---- the soak ---------------------------------------------------------------
run_probe soak-1.3 1.3 "$HALF1"; rc13=$?
run_probe soak-1.2 1.2 "$HALF2"; rc12=$?
T_LOAD=$((SECONDS - T0))
quiesce
sample end
for t in $(awk '{ print $1 }' "$LAB/samples" | uniq); do
    awk -v l="$t" '$1 == l { printf "%s%s rss %s kB fds %s threads %s", (n++ ? " | " : "# sample " l ": "), $2, $3, $4, $5 }
                   END { print "" }' "$LAB/samples"
done
for n in $PROCS; do
    [ "$(get end "$n" 3)" != - ]; check $? "$n alive through the soak (pid $(pid_of "$n"))"
done

# ---- the clients' view --------------------------------------------------------
for v in 1.3 1.2; do
    rc=rc${v/./}
    csv=$LAB/soak-$v.csv
    grep -E '^resumed [0-9]+ of' "$LAB/probe-soak-$v.log" | sed "s/^/# TLS $v probe: /"
    [ "${!rc}" = 0 ] && [ "$(awk -F, 'NR > 1 && $5 != 1' "$csv" | wc -l)" = 0 ]
    check $? "TLS $v: no failed connection (probe exit ${!rc}, $(csv_count "$csv" 1) connections)"
    [ "$(csv_count "$csv" '$9 == "TLSv'$v'"')" = "$(csv_count "$csv" 1)" ]
    check $? "TLS $v: every connection negotiated TLS $v"
    summary_matches_csv "$LAB/probe-soak-$v.log" "$csv"
    check $? "TLS $v: the probe's summary line matches its CSV"
    fleet_server_view "$csv" > "$LAB/view-$v.out" 2>&1
    check $? "TLS $v: $(tail -n 1 "$LAB/view-$v.out")"
    r1=$(csv_count "$csv" '$4 == "S1" && $8 == 1') r2=$(csv_count "$csv" '$4 == "S2" && $8 == 1')
    n=$(csv_epochs "$csv" | wc -l) half=$HALF1
    [ "$v" = 1.2 ] && half=$HALF2
    [ "$r1" -gt 0 ] && [ "$r2" -gt 0 ] && [ "$n" -ge $((half / EPOCH - 1)) ]
    check $? "TLS $v: both servers resumed tickets (S1 $r1, S2 $r2); ticket names span $n epochs (>= $((half / EPOCH - 1)))"
done

# classify CSV...: per client in connection order.  A reconnect that did not
# resume is "outside the window" if its ticket's key epoch is outside
# [e - KEYWIN, e + 1] (e: the epoch of the ticket the server issued instead),
# or, TLS 1.2 only, if the session may be older than the lifetime: its chain
# began with a full handshake in epoch e0 and e - e0 >= AGEMIN (a session
# whose chain is younger than that is certainly inside its lifetime).
# Prints: conns failed reconnects resumed expired outkey miss
classify() {
    cat "$@" | awk -F, '$1 != "client"' | sort -t, -k1,1 -k2,2n | awk -F, -v kw="$KEYWIN" -v am="$AGEMIN" '
        $1 != cl { cl = $1; e0 = "" }
        { conns++ }
        $5 != 1 { failed++; next }
        $6 == 1 && $8 == 1 { rec++; res++ }
        $6 == 1 && $8 != 1 {
            rec++; e = $14; oe = $12
            if (oe != "" && e != "" && (oe + 0 < e - kw || oe + 0 > e + 1)) outkey++
            else if ($9 == "TLSv1.2" && e0 != "" && e != "" && e - e0 >= am) expired++
            else { miss++; if (miss <= 10) print "# in-window reconnect not resumed: " $3 " " $4 " " $9 " offered epoch " oe " new epoch " e " chain from " e0 > "/dev/stderr" }
        }
        $8 != 1 { e0 = $14 }
        END { printf "%d %d %d %d %d %d %d\n", conns, failed, rec, res, expired, outkey, miss }'
}
read -r C13 F13 REC13 RES13 EXP13 OUT13 MISS13 < <(classify "$LAB/soak-1.3.csv" 2>>"$LAB/miss.txt")
read -r C12 F12 REC12 RES12 EXP12 OUT12 MISS12 < <(classify "$LAB/soak-1.2.csv" 2>>"$LAB/miss.txt")
cat "$LAB/miss.txt"
CONNS=$((C13 + C12)) FAILED=$((F13 + F12)) REC=$((REC13 + REC12)) RES=$((RES13 + RES12))
EXPD=$((EXP13 + EXP12)) OUTK=$((OUT13 + OUT12)) MISS=$((MISS13 + MISS12))
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b) printf "%.2f", 100 * a / b; else print "n/a" }'; }
INWIN_RATE=$(pct $RES $((RES + MISS))) RAW_RATE=$(pct $RES $REC)
[ "$FAILED" = 0 ]; check $? "no failed connection in $CONNS"
[ "$EXP13" = 0 ] && [ "$OUT13" = 0 ]
check $? "TLS 1.3: every reconnect offered a ticket inside the window (fresh session per ticket); $RES13 of $REC13 resumed"
[ "$OUT12" = 0 ]; check $? "TLS 1.2: no ticket offered outside the key window ($OUT12)"
[ "$EXP12" -le $(( 2 * (HALF2 / LIFETIME + 1) )) ]
check $? "TLS 1.2: $EXP12 full handshakes for sessions past the ${LIFETIME}s lifetime (at most one per client per lifetime: <= $(( 2 * (HALF2 / LIFETIME + 1) )))"
check_ge "$INWIN_RATE" "$SOAK_MIN_RATE"
check $? "every reconnect inside the window resumed: $RES of $((RES + MISS)) = $INWIN_RATE% (>= $SOAK_MIN_RATE%; $MISS missed)"

# ---- memory, fds, threads ---------------------------------------------------
for n in $PROCS; do
    rs=$(get start "$n" 3) re=$(get end "$n" 3) fs=$(get start "$n" 4) fe=$(get end "$n" 4)
    ts=$(get start "$n" 5) te=$(get end "$n" 5)
    rmax=$(awk -v n="$n" '$2 == n && $3 != "-" && $3 > m { m = $3 } END { print m + 0 }' "$LAB/samples")
    fmax=$(awk -v n="$n" '$2 == n && $4 != "-" && $4 > m { m = $4 } END { print m + 0 }' "$LAB/samples")
    [ "$re" != - ] && [ "$re" -le $((rs + SOAK_RSS_MARGIN_KB)) ]
    check $? "$n memory flat: RSS $rs kB after warm-up -> $re kB at the end ($(awk -v a="$re" -v b="$rs" 'BEGIN { printf "%+d", a - b }') kB, max $rmax kB; margin $SOAK_RSS_MARGIN_KB kB)"
    [ "$fe" != - ] && [ "$fe" -ge $((fs - SOAK_FD_MARGIN)) ] && [ "$fe" -le $((fs + SOAK_FD_MARGIN)) ]
    check $? "$n fds flat: $fs -> $fe (max $fmax under load; +-$SOAK_FD_MARGIN)"
    [ "$te" != - ] && [ "$te" -ge $((ts - SOAK_FD_MARGIN)) ] && [ "$te" -le $((ts + SOAK_FD_MARGIN)) ]
    check $? "$n threads flat: $ts -> $te"
    eval "RSS_$n=\"$rs -> $re kB\" FDS_$n=\"$fs -> $fe\""
done

# ---- the servers' counters (printed when they stop) ---------------------------
fleet_stop
stat() { awk -v k="$2" '/hsmkeys stats:/ { for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1) + 0; exit } }' "$LAB/hsmkeys-$1.log"; }
ELAPSED=$((SECONDS - T_BEGIN))
DEC=0 SRES=0 bad=0 dmax=$(( ELAPSED / EPOCH + KEYWIN + 4 ))
for s in S1 S2; do
    line=$(grep -h "hsmkeys stats:" "$LAB/hsmkeys-$s.log")
    echo "# $line"
    [ -n "$line" ] || bad=1
    d=$(stat "$s" resumed); DEC=$((DEC + ${d:-0}))
    SRES=$((SRES + $(grep -c ' resumed=1 ' "$LAB/hsmkeys-$s.conns")))
    for k in foreign window unavailable errors; do [ "$(stat "$s" "$k")" = 0 ] || bad=1; done
    [ "$(stat "$s" derivations)" -le $dmax ] 2>/dev/null || bad=1
done
[ "$bad" = 0 ]
check $? "servers: no ticket refused (foreign, window, unavailable), no token error, derivations <= $dmax (one per epoch elapsed + window + 4) each, whatever the number of connections"
[ $((DEC - SRES)) = "$EXPD" ]
check $? "servers: tickets decrypted under the fleet key $DEC = resumed $SRES + sessions past lifetime $EXPD"

# ---- summary ----------------------------------------------------------------
echo "# soak summary ($SOAK_SECONDS s of load, $T_LOAD s measured, $ELAPSED s in all):"
echo "#   connections      $CONNS (TLS 1.3 $C13, TLS 1.2 $C12), failed $FAILED"
echo "#   reconnects       $REC, resumed $RES ($RAW_RATE%); TLS 1.2 sessions past lifetime $EXPD, outside key window $OUTK"
echo "#   inside window    $RES of $((RES + MISS)) resumed = $INWIN_RATE%"
for n in $PROCS; do
    r=RSS_$n f=FDS_$n
    printf '#   %-3s RSS %-22s fds %s\n' "$n" "${!r}" "${!f}"
done
tap_done; rc=$?
echo "$((_tap_n - NFAIL)) passed, $NFAIL failed"
exit $rc
