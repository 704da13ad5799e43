#!/bin/bash
# run.sh - `make bench`: run every benchmark item and print one table.
#
#   bash bench/run.sh BUILD_DIR
#
# Items (docs/BENCHMARKS.md): 1 resumption with the callback vs OpenSSL's
# built-in keys; 2 full vs resumed handshake cost, keys in software and in
# the token; 3 token calls (library statistics, and OpenSC's pkcs11-spy.so
# between the library and SoftHSM2); 4 the epoch boundary; 5 the HAProxy
# fleet; 6 memory; 7 callgrind instruction counts; 8 TLS 1.2 session-ID
# resumption through the sealed session cache (Redis) vs tickets vs full
# handshakes, and the cost of a store outage; 9 the forward-erasable mode's
# cost per epoch next to the static mode's.  Raw ROW lines go to
# BUILD/bench/results.txt, chart data and the PNG next to them.
# Env: BENCH_RUNS (default 5), BENCH_ITEMS (default "1 2 3 4 5 7 8 9"; 6 comes
# with 5), BENCH_HANDSHAKES (item 3, default 100000), FLEET_* (fleet.sh).
set -uo pipefail
B=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
export HSMKEYS_ROOT=$ROOT HSMKEYS_BUILD=$ROOT/$B
OUT=$ROOT/$B/bench
BIN=$OUT/hsmkeys-bench
RUNS=${BENCH_RUNS:-5}
ITEMS=${BENCH_ITEMS:-1 2 3 4 5 7 8 9}
HANDSHAKES=${BENCH_HANDSHAKES:-100000}
SPY=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
RES=$OUT/results.txt
LOG=$OUT/bench.log
mkdir -p "$OUT"
: > "$RES"; : > "$LOG"
want() { case " $ITEMS " in *" $1 "*) return 0;; esac; return 1; }
T0=$SECONDS
step() { echo "bench: [$((SECONDS - T0)) s] $*" >&2; }
run() { "$@" 2>>"$LOG" | grep '^ROW|' | tee -a "$RES" >/dev/null; return "${PIPESTATUS[0]}"; }
failed=()

if want 1; then step "1 resumption, built-in keys vs callback ($RUNS runs)"; run "$BIN" resume "$RUNS" || failed+=(1); fi
if want 2; then step "2 full vs resumed ($RUNS runs)"; run "$BIN" full "$RUNS" || failed+=(2); fi
if want 3; then
    step "3 token calls ($HANDSHAKES resumed handshakes, then through pkcs11-spy)"
    run "$BIN" calls "$HANDSHAKES" || failed+=(3)
    if [ -r "$SPY" ]; then
        # A separate lab host: the spy wraps SoftHSM2 from the first
        # C_Initialize.  The spy log holds token outputs (keys derived from a
        # public test master) and the lab's throwaway PIN: it is private
        # (umask 077) and removed with the lab right after counting.
        (
            . "$ROOT/tests/lib/lab.sh"
            lab_init
            lab_host SPY fleet >/dev/null || exit 1
            umask 077
            uri="pkcs11:token=SPY;object=hsmkeys-master?module-path=$SPY&pin-source=$SPY_PIN_FILE"
            SOFTHSM2_CONF=$SPY_CONF PKCS11SPY=/usr/lib/softhsm/libsofthsm2.so PKCS11SPY_OUTPUT=$LAB/spy.log \
                "$BIN" calls "$HANDSHAKES" "$uri" "via pkcs11-spy" 2>>"$LOG" | grep '^ROW|' >> "$RES"
            rc=${PIPESTATUS[0]}
            rm -f "$LAB/spy.log"
            exit "$rc"
        ) || failed+=(3-spy)
    else
        echo "ROW|3 token calls|pkcs11-spy.so not found (opensc): spy count skipped|-|-|-|" >> "$RES"
    fi
fi
if want 9; then step "9 forward-erasable cost per epoch ($RUNS runs)"; run "$BIN" erasable "$RUNS" || failed+=(9); fi
if want 4; then step "4 epoch boundary ($RUNS runs)"; run "$BIN" boundary "$RUNS" || failed+=(4); fi
if want 5; then
    step "5 fleet via HAProxy and 6 memory (takes a few minutes)"
    bash bench/fleet.sh "$B" "$OUT" 2>>"$LOG" | grep '^ROW|' >> "$RES" || failed+=(5)
fi
if want 7; then
    step "7 callgrind instruction counts"
    rm -f "$OUT"/callgrind.out*
    n=${BENCH_CG_HANDSHAKES:-200}
    if valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$BIN" cg all "$n" \
            > "$OUT/cg-parts.txt" 2>>"$LOG"; then
        bash bench/cg_report.sh "$OUT" >> "$RES" || failed+=(7)
    else
        failed+=(7)
    fi
fi

if want 8; then
    step "8 session IDs through the sealed cache vs tickets vs full, and a store outage ($RUNS runs)"
    if command -v redis-server >/dev/null; then
        # A throwaway Redis on loopback (tests/sesscache/sc_lab.sh), stopped
        # by its PID with the lab; the bench stops it with SIGSTOP itself for
        # the outage figures and continues it after.
        (
            . "$ROOT/tests/lib/lab.sh"
            . "$ROOT/tests/sesscache/sc_lab.sh"
            lab_init
            redis_start R >/dev/null || exit 1
            run "$BIN" sesscache "$RUNS" "redis://127.0.0.1:$R_PORT" "$R_PW" "$(lab_pid R)"
        ) || failed+=(8)
    else
        echo "ROW|8 session IDs|redis-server not installed (make deps): skipped|-|-|-|" >> "$RES"
    fi
fi

step "done"
bash bench/table.sh "$RES"
if command -v gnuplot >/dev/null && [ -s "$OUT/fleet.dat" ] && grep -q '^ROW|1 resumption' "$RES"; then
    awk -F'|' '$2 == "1 resumption" && $3 ~ /resumed, / {
            v = substr($3, 1, 7); if ($3 ~ /built-in/) b[v] = $5; else h[v] = $5; if (!(v in seen)) { seen[v] = 1; o[++n] = v } }
        END { for (i = 1; i <= n; i++) printf "\"%s\" %s %s\n", o[i], b[o[i]], h[o[i]] }' "$RES" > "$OUT/resume.dat"
    awk '$3 == "baseline" { b = $4 } $3 == "hsmkeys" { printf "\"%s srv, %s cl\" %s %s\n", $1, $2, b, $4 }' \
        "$OUT/fleet.dat" > "$OUT/fleet2.dat"
    gnuplot -e "out='$OUT/bench.png'; resume='$OUT/resume.dat'; fleet='$OUT/fleet2.dat'" bench/chart.gp 2>>"$LOG" \
        && echo "chart: $OUT/bench.png"
fi
echo "raw rows: $RES; stderr of the runs: $LOG"
if [ ${#failed[@]} -gt 0 ]; then echo "bench: items failed: ${failed[*]} (see $LOG)" >&2; exit 1; fi
exit 0
