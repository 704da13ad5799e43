#!/bin/bash
# fleet.sh - items 5 and 6: the seed lab through HAProxy (mode tcp,
# roundrobin) with 2, 4 and 8 backend servers (tools/demo-server), baseline
# (each server its own OpenSSL ticket keys) against hsmkeys (every server's
# throwaway SoftHSM2 token holds the same test master).  hsmkeys-probe
# reconnects with C concurrent clients, each offering its newest ticket.
#
# Prints ROW lines (see bench/bench.h) and writes $OUT/fleet.dat for the
# chart.  Both fleets run side by side and the probe alternates between
# them, run by run.  Server CPU per connection: utime+stime of all backend
# processes over the probe run (/proc/PID/stat) / connections.  Memory:
# VmRSS / VmHWM of one backend after the runs.
#
# Only processes started here are stopped, by recorded PID (tests/lib/lab.sh).
# Usage: bench/fleet.sh BUILD_DIR OUT_DIR   (env: FLEET_RUNS, FLEET_SECONDS,
#        FLEET_SIZES, FLEET_CONCURRENCY)
set -uo pipefail
B=${1:-build}
OUT=${2:-$B/bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HSMKEYS_ROOT=$ROOT HSMKEYS_BUILD=$ROOT/$B
RUNS=${FLEET_RUNS:-5}
SECS=${FLEET_SECONDS:-1}
SIZES=${FLEET_SIZES:-2 4 8}
CONC=${FLEET_CONCURRENCY:-1 4 16}
# shellcheck source=../tests/lib/lab.sh
. "$ROOT/tests/lib/lab.sh"
# shellcheck source=../tests/lib/probe_summary.sh
. "$ROOT/tests/lib/probe_summary.sh"
lab_init
mkdir -p "$OUT"
: > "$OUT/fleet.dat"

for i in $(seq 1 8); do lab_host "S$i" fleet >/dev/null || exit 1; done

# start_fleet MODE N -> sets PORT, SERVER_PIDS
start_fleet() {
    local mode=$1 n=$2 i addr conf uri cfg
    PORT=$(lab_port)
    cfg=$LAB/$mode-$n-haproxy.cfg
    printf 'global\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\nfrontend lb\n    bind 127.0.0.10:%s\n    default_backend fleet\nbackend fleet\n    balance roundrobin\n' "$PORT" > "$cfg"
    SERVER_PIDS=()
    for i in $(seq 1 "$n"); do
        addr=127.0.0.$((10 + i))
        printf '    server S%d %s:%s\n' "$i" "$addr" "$PORT" >> "$cfg"
        if [ "$mode" = baseline ]; then
            lab_spawn "$mode-$n-S$i" "$HSMKEYS_BUILD/hsmkeys-demo-server" --name "S$i" \
                --listen "$addr:$PORT" --log /dev/null --baseline
        else
            conf=S${i}_CONF; uri=S${i}_URI
            lab_spawn "$mode-$n-S$i" env SOFTHSM2_CONF="${!conf}" "$HSMKEYS_BUILD/hsmkeys-demo-server" \
                --name "S$i" --listen "$addr:$PORT" --log /dev/null \
                -o "uri=${!uri}" -o "domain=bench.example"
        fi
        SERVER_PIDS+=("$(lab_pid "$mode-$n-S$i")")
    done
    lab_spawn "$mode-$n-LB" haproxy -db -f "$cfg"
    for i in $(seq 1 "$n"); do lab_wait_port "$PORT" "127.0.0.$((10 + i))" || return 1; done
    lab_wait_port "$PORT" 127.0.0.10
}

stop_fleet() {
    local mode=$1 n=$2 i
    lab_stop "$mode-$n-LB"
    for i in $(seq 1 "$n"); do lab_stop "$mode-$n-S$i"; done
}

cpu_ticks() { # sum of utime+stime of the given PIDs
    local t=0 p f
    for p in "$@"; do
        f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}

# probe_once PORT CLIENTS PIDS... -> prints "conns_per_s resumed_pct cpu_us_per_conn"
probe_once() {
    local port=$1 c=$2; shift 2
    local t0 t1 sum=$LAB/probe.summary
    rm -f "$sum"
    t0=$(cpu_ticks "$@")
    "$HSMKEYS_BUILD/hsmkeys-probe" -q -d "$SECS" -c "$c" --summary "$sum" "127.0.0.10:$port" >/dev/null 2>&1
    t1=$(cpu_ticks "$@")
    probe_summary "$sum" S || return 1
    awk -v n="$S_connections" -v r="$S_resumed" -v rc="$S_reconnects" -v secs="$SECS" \
        -v ticks="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        d = n > 1 ? n : 1; o = rc > 1 ? rc : 1
        printf "%.1f %.1f %.1f\n", n / secs, 100.0 * r / o, ticks * 1e6 / hz / d }'
}

med() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

for n in $SIZES; do
    start_fleet baseline "$n" || exit 1
    BPORT=$PORT; BPIDS=("${SERVER_PIDS[@]}")
    start_fleet hsmkeys "$n" || exit 1
    HPORT=$PORT; HPIDS=("${SERVER_PIDS[@]}")
    for c in $CONC; do
        : > "$LAB/b.txt"; : > "$LAB/h.txt"
        for r in $(seq 1 "$RUNS"); do
            if [ $((r % 2)) = 1 ]; then
                probe_once "$BPORT" "$c" "${BPIDS[@]}" >> "$LAB/b.txt"
                probe_once "$HPORT" "$c" "${HPIDS[@]}" >> "$LAB/h.txt"
            else
                probe_once "$HPORT" "$c" "${HPIDS[@]}" >> "$LAB/h.txt"
                probe_once "$BPORT" "$c" "${BPIDS[@]}" >> "$LAB/b.txt"
            fi
        done
        for m in baseline hsmkeys; do
            f=$LAB/${m:0:1}.txt
            rate=$(cut -d' ' -f1 "$f" | sort -g)
            res=$(cut -d' ' -f2 "$f" | med); cpu=$(cut -d' ' -f3 "$f" | med)
            printf 'ROW|5 fleet via HAProxy|%d servers, %2d clients, %-8s (resumed %s%%, server CPU %s us/conn)|%s|%s|%s|connections/s\n' \
                "$n" "$c" "$m" "$res" "$cpu" "$(echo "$rate" | head -1)" "$(echo "$rate" | med)" \
                "$(echo "$rate" | tail -1)"
            printf '%s %s %s %s %s %s\n' "$n" "$c" "$m" "$(echo "$rate" | med)" "$res" "$cpu" >> "$OUT/fleet.dat"
        done
    done
    if [ "$n" = "$(echo "$SIZES" | awk '{print $1}')" ]; then
        for m in baseline hsmkeys; do
            p=${BPIDS[0]}; [ $m = hsmkeys ] && p=${HPIDS[0]}
            rss=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status"); hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status")
            printf 'ROW|6 memory|demo server %s, after the fleet runs: VmRSS (VmHWM %s kB)|%s|%s|%s|kB\n' "$m" "$hwm" "$rss" "$rss" "$rss" >> "$LAB/mem.txt"
        done
    fi
    stop_fleet baseline "$n"
    stop_fleet hsmkeys "$n"
done
cat "$LAB/mem.txt"
