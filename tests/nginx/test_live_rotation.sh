#!/bin/bash
# test_live_rotation.sh - a master rotation and the old generation's
# retirement in a running nginx fleet, with no restart and no reload.
#
# Two nginx servers (2 workers each, http module, epochs of 2 s, lifetime
# 6 s) on two tokens holding the same master, behind HAProxy round robin.
# While two clients reconnect, generation 2 is added on S1's token with an
# activation time about 6 s ahead and cloned to S2's token by the wrapping
# ceremony (tests/lib/rotation.sh).  Across the activation >= 99% of the
# reconnects resume, none fails, and every ticket of an epoch from the
# activation on carries generation 2's name tag (the workers' key
# maintainers re-read the token's generations).  Then generation 1 is
# destroyed on both tokens as soon as the tool allows it: still >= 99%
# resumed, none failed, no hsmkeys error in the logs.  Last, S1 is upgraded
# in place (USR2) and S2 reloaded while clients reconnect: the new workers'
# maintainers carry on under generation 2.  Also: the master holds no key
# (tests/hygiene/t-procscan reads its memory).  With the old
# per-worker refresh timer the servers kept encrypting under generation 1
# (tag check fails) and failed derivations after the destroy.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/lib/rotation.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
if [ -n "$why" ]; then tap_skip "nginx live rotation" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=2s NGX_LIFETIME=6s
EPOCH=2 LIFETIME=6
lab_host S1 fleet && lab_host S2 fleet && ngx_lab_init && rot_prepare S1 S2
tap_ok $? "two tokens with the same master; S2's transport key trusted by S1"

P1=$(lab_port) P2=$(lab_port) PL=$(lab_port)
ngx_conf S1 127.0.0.1 "$P1" "$S1_URI"
ngx_conf S2 127.0.0.1 "$P2" "$S2_URI"
# S1 runs as a daemon (as in production): nginx refuses a binary upgrade
# while the master's parent is the one that started it, and re-executes
# argv[0], hence the full path.
sed -i 's/^daemon off;/daemon on;/' "$LAB/S1/nginx.conf"
SOFTHSM2_CONF=$S1_CONF "$(command -v nginx)" -p "$LAB/S1" -c "$LAB/S1/nginx.conf" >"$LAB/S1.log" 2>&1 &&
    lab_record_pid S1 "$(cat "$LAB/S1/nginx.pid")" && lab_wait_children S1 2 &&
    ngx_start S2 S2 && lb_start LB 127.0.0.1 "$PL" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "S1 and S2 (2 workers each) behind HAProxy round robin"
# The master serves nothing: after opening the token it forgets the keys;
# each worker's maintainer derives its own (a worker is the scan's positive
# control).
sleep 1
m=$(lab_pid S2) w=$(pgrep -P "$(lab_pid S2)" | head -1)
read -r _ mhits _ whits < <(SOFTHSM2_CONF=$S2_CONF "$HSMKEYS_BUILD/tests/t-procscan" "$S2_URI" "$NGX_DOMAIN" $EPOCH $LIFETIME "$m" "$w" | tr '\n' ' ')
echo "# window keys found in S2's master (pid $m): ${mhits:-?}, in a worker (pid $w): ${whits:-?}"
[ "${mhits:-1}" = 0 ] && [ "${whits:-0}" -gt 0 ]
tap_ok $? "nginx's master holds none of the window's keys, a worker does"

ROT_LOGS="$LAB/S1/error.log $LAB/S2/error.log"
ROT_ERR_RE='\[(emerg|alert|crit|error)\]|\[warn\].*hsmkeys'
rot_live S1 S2 "$NGX_DOMAIN" $EPOCH $LIFETIME "127.0.0.1:$PL" -c 2 -i 20
echo "# nginx: rotation $ROT_ROTATION, retirement $ROT_RETIREMENT (resumed/reconnects failed)"
G2=$(rot_tag S1 "$NGX_DOMAIN" 2)

# Binary upgrade of S1 (USR2: a new master with new workers beside the old
# ones, then WINCH and QUIT to the old master) and nginx -s reload of S2
# while clients reconnect: the new workers start their own key maintainers
# and carry on under generation 2.
rot_probe "$LAB/upg" --duration 9 -c 2 -i 20 "127.0.0.1:$PL" &
bg=$!
sleep 1
old=$(lab_pid S1) new=""
kill -USR2 "$old"
for _ in $(seq 1 100); do
    [ -s "$LAB/S1/nginx.pid.oldbin" ] && new=$(cat "$LAB/S1/nginx.pid" 2>/dev/null) &&
        [ -n "$new" ] && [ "$new" != "$old" ] && [ "$(pgrep -P "$new" -c)" -ge 2 ] && break
    new=""; sleep 0.1
done
[ -n "$new" ] && lab_record_pid S1-new "$new"
sleep 1
kill -WINCH "$old"; sleep 1; kill -QUIT "$old"
for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
ngx_reload S2 S2; r2=$?
wait $bg
! kill -0 "$old" 2>/dev/null && [ -n "$new" ] && kill -0 "$new" && [ "$(pgrep -P "$new" -c)" -ge 2 ] && [ $r2 = 0 ]
tap_ok $? "S1 upgraded in place (USR2, WINCH, QUIT: master $old -> $new) and S2 reloaded during the run"
rot_read "$LAB/upg"
ROT_UPGRADE="$ROT_RESUMED/$ROT_RECONNECTS $ROT_FAILED"
read -r _ aft wrong < <(rot_tags_check "$LAB/upg.json" 0 "-" "$G2")
rot_resumed_ok && [ "$aft" -gt 0 ] && [ "$wrong" = 0 ]
tap_ok $? "across the binary upgrade and the reload: >= 99% of $ROT_RECONNECTS reconnects resumed ($ROT_RESUMED), 0 failed ($ROT_FAILED), every ticket under generation 2 ($aft)"
! grep -E '\[(emerg|alert|crit)\]' "$LAB/S1/error.log" "$LAB/S2/error.log"
tap_ok $? "no alert in the servers' error logs"
tap_done
