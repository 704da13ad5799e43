# rotation.sh - a live master rotation and retirement on two lab hosts whose
# servers keep running (sourced after tests/lib/lab.sh).  Used by the
# tests/*/test_*_live_rotation.sh suites of nginx, Apache and the HAProxy
# feeder.
#
# What it does is the operator's procedure of docs/PROVISIONING.md with the
# real tool: host B makes a transport key pair, A's security officer trusts
# its public key (rot_prepare, before the servers start); then, while the
# servers serve, A adds generation N with an activation time, wraps it for
# B, B unwraps it (checked by KCV), A seals it (rot_clone); once the tool
# allows it, generation N-1 is destroyed on both (rot_destroy_when_allowed).
# ROT_AS is a command prefix for the token operations (Apache's tokens
# belong to its User: "runuser -u www-data --"); the SO step runs as the
# caller.  Threat handled by the suites: a fleet that splits at a rotation
# (running servers keep the old generation) or breaks at a retirement.
#
#   rot_prepare A B                   transport key of B trusted by A
#   rot_clone A B GEN ACTIVATE_AT     generation GEN on A, cloned to B, sealed
#   rot_tag HOST DOMAIN GEN           20 hex digits: version + name tag of GEN
#   rot_destroy_when_allowed EPOCH LIFETIME GEN HOST...
#                                     retry destroy until the tool accepts it
#                                     (<= 40 s); sets ROT_DESTROYED_AT
#   rot_destroy_after HOST EPOCH LIFETIME GEN
#                                     unix time from which the tool will
#                                     destroy GEN (from its refusal message)
#   rot_next_boundary EPOCH AHEAD     first multiple of EPOCH >= now + AHEAD
#   rot_tags_check JSON ACT_EPOCH OLD_TAG NEW_TAG
#                                     every ticket of an epoch < ACT_EPOCH has
#                                     OLD_TAG, every later one NEW_TAG;
#                                     prints "before after wrong"
#   rot_probe OUT PROBE_ARGS...       hsmkeys-probe, JSON in OUT.json and a
#                                     summary in OUT (run it in the background
#                                     and read it with rot_read OUT)
#   rot_read OUT                      sets ROT_TOTAL ROT_FAILED ROT_RECONNECTS
#                                     ROT_RESUMED ROT_CROSS ROT_BACKENDS
#   rot_resumed_ok                    last rot_read: >= 99% of the reconnects
#                                     resumed, 0 failed, 2 backends, >= 25%
#                                     resumed on the other server than the
#                                     client's previous one (with several
#                                     clients round robin does not alternate
#                                     per client)
#   rot_log_mark FILE / rot_log_since FILE MARK
#                                     byte offset of a log, lines added after

ROT_TOOL=$HSMKEYS_BUILD/hsmkeys-tool
: "${ROT_AS:=}"

_rot_t() { # HOST ARGS...: the tool on HOST's token, as $ROT_AS
    local h=$1 conf pin; shift
    conf=${h}_CONF pin=${h}_PIN_FILE
    # shellcheck disable=SC2086 # ROT_AS: a command prefix
    $ROT_AS env SOFTHSM2_CONF="${!conf}" "$ROT_TOOL" "$@" --token "$h" --pin-source "${!pin}"
}

rot_prepare() {
    local a=$1 b=$2 aconf aso fp
    aconf=${a}_CONF aso=${a}_SO_PIN_FILE
    mkdir -p "$LAB/rotation" && chmod 777 "$LAB/rotation"
    # the fingerprint B's operator would read out over the phone
    _rot_t "$b" transport-keygen --out "$LAB/rotation/$b.pem" >"$LAB/rotation/keygen.out" 2>&1 &&
        fp=$(awk '$1 == "fingerprint" { print $2; exit }' "$LAB/rotation/keygen.out") && [ -n "$fp" ] &&
        SOFTHSM2_CONF=${!aconf} "$ROT_TOOL" trust --token "$a" --so-pin-source "${!aso}" \
            --in "$LAB/rotation/$b.pem" --expect-fingerprint "$fp" --name "$b" >"$LAB/rotation/trust.out" 2>&1 ||
        { sed 's/^/# /' "$LAB/rotation/"*.out >&2; return 1; }
}

rot_clone() {
    local a=$1 b=$2 gen=$3 at=$4 w=$LAB/rotation kcv
    _rot_t "$a" rotate --clonable --activate-at "$at" >"$w/rotate.out" 2>&1 &&
        grep -q "generation $gen, active from" "$w/rotate.out" &&
        kcv=$(_rot_t "$a" wrap --generation "$gen" --to "$w/$b.pem" --out "$w/blob$gen" 2>&1 |
              awk '$1 == "kcv" { print $3 }') && [ -n "$kcv" ] &&
        _rot_t "$b" unwrap --in "$w/blob$gen" --expect-kcv "$kcv" >"$w/unwrap.out" 2>&1 &&
        _rot_t "$a" seal --generation "$gen" >"$w/seal.out" 2>&1 ||
        { sed 's/^/# /' "$w/"*.out >&2; return 1; }
}

rot_tag() {
    _rot_t "$1" status --domain "$2" 2>/dev/null |
        awk -v g="$3" '$1 == "generation" { f = ($2 == g) } f && /key names for domain/ { print $(NF - 2); exit }'
}

rot_destroy_when_allowed() {
    local epoch=$1 lifetime=$2 gen=$3 h done; shift 3
    ROT_DESTROYED_AT=0
    for h in "$@"; do
        done=1
        for _ in $(seq 1 160); do
            if _rot_t "$h" destroy --generation "$gen" --epoch "$epoch" --lifetime "$lifetime" \
                    >"$LAB/rotation/destroy-$h.out" 2>&1; then
                done=0; break
            fi
            grep -q 'within the window' "$LAB/rotation/destroy-$h.out" || break
            sleep 0.25
        done
        [ $done = 0 ] || { sed 's/^/# /' "$LAB/rotation/destroy-$h.out" >&2; return 1; }
    done
    ROT_DESTROYED_AT=$(date +%s)
}

rot_destroy_after() {
    _rot_t "$1" destroy --generation "$4" --epoch "$2" --lifetime "$3" 2>&1 |
        sed -n 's/.*Destroy it after [^ ]* (\([0-9]*\)).*/\1/p' | head -1
}

rot_next_boundary() { local now; now=$(date +%s); echo $(( (now + $2 + $1 - 1) / $1 * $1 )); }

rot_tags_check() {
    python3 - "$@" <<'PY'
import json, sys
path, act, old, new = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
before = after = wrong = 0
for c in json.load(open(path))["connections"]:
    name, e = c.get("ticket_name") or "", c.get("ticket_epoch")
    if not name or e is None:
        continue
    want = old if e < act else new
    if e < act:
        before += 1
    else:
        after += 1
    if name[:20] != want:
        wrong += 1
        if wrong <= 3:
            print("# ticket of epoch %d named %s, expected tag %s" % (e, name, want), file=sys.stderr)
print(before, after, wrong)
PY
}

rot_log_mark() { stat -c %s "$1" 2>/dev/null || echo 0; }
rot_log_since() { tail -c +"$(( $2 + 1 ))" "$1" 2>/dev/null; }

rot_probe() {
    local out=$1; shift
    "$HSMKEYS_BUILD/hsmkeys-probe" --quiet --json "$out.json" "$@" >"$out.log" 2>&1
    python3 - "$out.json" > "$out" <<'PY'
import json, sys
try:
    conns = json.load(open(sys.argv[1]))["connections"]
except Exception:
    print("0 0 0 0 0 0"); sys.exit()
failed = reconnects = resumed = cross = 0
last = {}
for c in conns:
    if not c["ok"]:
        failed += 1
        if failed <= 3:
            print("# failed:", c["id"], c["backend"], c["error"], file=sys.stderr)
        continue
    prev = last.get(c["client"])
    if prev is not None:
        reconnects += 1
        if c["offered"] and c["resumed"]:
            resumed += 1
            cross += prev != c["backend"]
    last[c["client"]] = c["backend"]
backends = len({c["backend"] for c in conns if c["backend"]})
print(len(conns), failed, reconnects, resumed, cross, backends)
PY
}

rot_read() {
    [ -s "$1" ] || echo "0 0 0 0 0 0" > "$1"
    read -r ROT_TOTAL ROT_FAILED ROT_RECONNECTS ROT_RESUMED ROT_CROSS ROT_BACKENDS < "$1"
    echo "# probe: resumed $ROT_RESUMED of $ROT_RECONNECTS reconnects ($ROT_CROSS on the other server);" \
         "$ROT_TOTAL connections, $ROT_FAILED failed, $ROT_BACKENDS backends"
}

rot_resumed_ok() {
    [ "$ROT_RECONNECTS" -gt 0 ] && [ $(( ROT_RESUMED * 100 )) -ge $(( ROT_RECONNECTS * 99 )) ] &&
        [ "$ROT_FAILED" = 0 ] && [ "$ROT_BACKENDS" -ge 2 ] && [ $(( ROT_CROSS * 4 )) -ge "$ROT_RECONNECTS" ]
}

# rot_live A B DOMAIN EPOCH LIFETIME TARGET PROBE_ARGS...: the whole live
# scenario with its TAP lines, for servers already running on A's and B's
# tokens behind TARGET (host:port).  Needs rot_prepare A B done.
#   ROT_LOGS     the servers' log files (their lines after each step are
#                printed, for docs/PROVISIONING.md)
#   ROT_ERR_RE   extended regex of a token error or hsmkeys warning line in
#                those logs; none may appear after the retirement
# Sets ROT_ROTATION / ROT_RETIREMENT to "resumed/reconnects failed".
rot_live() {
    local a=$1 b=$2 dom=$3 epoch=$4 lifetime=$5 target=$6 g1 g2 act dur bg rc cloned after
    local before aft wrong f marks=() i errs
    shift 6
    g1=$(rot_tag "$a" "$dom" 1)
    act=$(rot_next_boundary "$epoch" 8)
    dur=$(( act + 6 - $(date +%s) ))
    rot_probe "$LAB/rot" --duration "$dur" "$@" "$target" &
    bg=$!
    sleep 2
    for f in $ROT_LOGS; do marks+=("$(rot_log_mark "$f")"); done
    rot_clone "$a" "$b" 2 "$act"; rc=$?
    cloned=$(date +%s)
    [ $rc = 0 ] && [ "$cloned" -lt "$act" ]
    tap_ok $? "generation 2 added on $a (active from $act, epoch $((act / epoch))), cloned to $b and sealed $((act - cloned)) s before its activation"
    g2=$(rot_tag "$a" "$dom" 2)
    wait $bg
    rot_read "$LAB/rot"
    ROT_ROTATION="$ROT_RESUMED/$ROT_RECONNECTS $ROT_FAILED"
    rot_resumed_ok
    tap_ok $? "across the activation: >= 99% of $ROT_RECONNECTS reconnects resumed ($ROT_RESUMED, $ROT_CROSS on the other server), 0 failed ($ROT_FAILED)"
    read -r before aft wrong < <(rot_tags_check "$LAB/rot.json" $((act / epoch)) "$g1" "$g2")
    echo "# tickets of epochs before the activation: $before (tag $g1), from it on: $aft (tag $g2), wrong tag: $wrong"
    [ -n "$g1" ] && [ -n "$g2" ] && [ "$g1" != "$g2" ] && [ "$before" -gt 0 ] && [ "$aft" -gt 0 ] && [ "$wrong" = 0 ]
    tap_ok $? "tickets of epochs from the activation on carry generation 2's tag ($aft), earlier ones generation 1's ($before)"
    i=0
    for f in $ROT_LOGS; do
        rot_log_since "$f" "${marks[$i]}" | grep -i 'hsmkeys' | head -6 | sed "s|^|# ${f#"$LAB"/}: |"
        i=$((i + 1))
    done

    after=$(rot_destroy_after "$a" "$epoch" "$lifetime" 1)
    [ -n "$after" ] || after=$(( act + 2 * lifetime ))
    rot_probe "$LAB/ret" --duration $(( after + 8 - $(date +%s) )) "$@" "$target" &
    bg=$!
    sleep 1
    marks=()
    for f in $ROT_LOGS; do marks+=("$(rot_log_mark "$f")"); done
    rot_destroy_when_allowed "$epoch" "$lifetime" 1 "$a" "$b"
    tap_ok $? "generation 1 destroyed on both tokens once the tool allowed it ($((ROT_DESTROYED_AT - act)) s after the activation)"
    wait $bg
    rot_read "$LAB/ret"
    ROT_RETIREMENT="$ROT_RESUMED/$ROT_RECONNECTS $ROT_FAILED"
    rot_resumed_ok && [ $(( $(date +%s) - ROT_DESTROYED_AT )) -ge 4 ]
    tap_ok $? "across the retirement: >= 99% of $ROT_RECONNECTS reconnects resumed ($ROT_RESUMED, $ROT_CROSS on the other server), 0 failed ($ROT_FAILED)"
    read -r before aft wrong < <(rot_tags_check "$LAB/ret.json" 0 "$g1" "$g2")
    [ "$aft" -gt 0 ] && [ "$wrong" = 0 ]
    tap_ok $? "after the retirement every ticket carries generation 2's tag ($aft)"
    i=0 errs=""
    for f in $ROT_LOGS; do
        rot_log_since "$f" "${marks[$i]}" | grep -i 'hsmkeys' | head -6 | sed "s|^|# ${f#"$LAB"/}: |"
        errs+=$(rot_log_since "$f" "${marks[$i]}" | grep -E "$ROT_ERR_RE")$'\n'

        i=$((i + 1))
    done
    errs=$(printf '%s' "$errs" | grep -v '^$')
    [ -z "$errs" ] || printf '%s\n' "$errs" | head -5 | sed 's/^/#   error: /'
    [ -z "$errs" ]
    tap_ok $? "no token error and no hsmkeys warning in the servers' logs after the retirement"
}
