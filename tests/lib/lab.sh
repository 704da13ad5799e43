# lab.sh - shell helpers for integration tests and the demo.
#
# A "lab" is one temp dir ($LAB) holding throwaway SoftHSM2 hosts, configs and
# logs, and the PIDs of every process the test started.  The EXIT trap stops
# exactly those PIDs (never anything else) and removes $LAB.
#
#   lab_init; lab_host S1; lab_host S2; lab_spawn ...; tap_ok $? "..."; tap_done

: "${HSMKEYS_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${HSMKEYS_BUILD:=$HSMKEYS_ROOT/build}"
export HSMKEYS_ROOT HSMKEYS_BUILD
LAB_SOFTHSM_MODULE=${LAB_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
_tap_n=0
_tap_failed=0

lab_cleanup() {
    local f pid
    for f in "$LAB"/pids/*; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    for f in "$LAB"/pids/*; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    if [ -n "${LAB_KEEP:-}" ]; then echo "# lab kept in $LAB" >&2; else rm -rf "$LAB"; fi
}

lab_init() {
    LAB=$(mktemp -d "${TMPDIR:-/tmp}/hsmkeys-lab-XXXXXX")
    chmod 755 "$LAB"
    mkdir -p "$LAB/pids"
    export LAB
    trap lab_cleanup EXIT
    trap 'exit 130' INT TERM
}

# lab_host NAME [SEED [GENERATION [ACTIVATION]]]
lab_host() {
    local name=$1 seed=${2:-fleet} gen=${3:-1} act=${4:-0} d
    d=$LAB/$name
    mkdir -p "$d/tokens"
    chmod 755 "$d"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$d" > "$d/softhsm2.conf"
    chmod 644 "$d/softhsm2.conf"
    (umask 077; printf 'pin-%s-%s' "$name" "$RANDOM$RANDOM" > "$d/pin"; printf 'so-%s-%s' "$name" "$RANDOM$RANDOM" > "$d/so-pin")
    SOFTHSM2_CONF=$d/softhsm2.conf "$HSMKEYS_BUILD/tests/t-token" "$name" "$d/pin" "$d/so-pin" "$seed" "$gen" "$act" \
        || { echo "lab_host $name: token set-up failed" >&2; return 1; }
    printf -v "${name}_CONF" '%s' "$d/softhsm2.conf"
    printf -v "${name}_PIN_FILE" '%s' "$d/pin"
    printf -v "${name}_SO_PIN_FILE" '%s' "$d/so-pin"
    printf -v "${name}_URI" '%s' "pkcs11:token=$name;object=hsmkeys-master?module-path=$LAB_SOFTHSM_MODULE&pin-source=$d/pin"
    export "${name}_CONF" "${name}_PIN_FILE" "${name}_SO_PIN_FILE" "${name}_URI"
}

lab_port() {
    python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

lab_spawn() {
    local name=$1; shift
    "$@" >"$LAB/$name.log" 2>&1 &
    echo $! > "$LAB/pids/$name"
}
lab_pid() { cat "$LAB/pids/$1" 2>/dev/null; }
lab_record_pid() { echo "$2" > "$LAB/pids/$1"; }

lab_stop() {
    local pid
    pid=$(lab_pid "$1") || return 0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$LAB/pids/$1"
    return 0
}

lab_wait_port() {
    local port=$1 host=${2:-127.0.0.1}
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "# nothing listens on $host:$port after 10 s" >&2
    return 1
}

# lab_wait_children NAME N: the recorded process NAME (a server's master)
# has at least N children (its workers), within 10 s.
lab_wait_children() {
    local pid c=0
    pid=$(lab_pid "$1")
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { echo "# $1 exited:" >&2; tail -n 5 "$LAB/$1.log" "$LAB/$1/error.log" >&2 2>/dev/null; return 1; }
        c=$(pgrep -P "$pid" -c 2>/dev/null); c=${c:-0}
        [ "$c" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "# $1 has $c of $2 children after 10 s" >&2
    return 1
}

tap_ok() {
    local rc=$1; shift
    _tap_n=$((_tap_n + 1))
    if [ "$rc" = 0 ]; then echo "ok $_tap_n - $*"; else echo "not ok $_tap_n - $*"; _tap_failed=1; fi
}
tap_skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1 # SKIP $2"; }
tap_done() { echo "1..$_tap_n"; return $_tap_failed; }
