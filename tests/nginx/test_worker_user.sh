#!/bin/bash
# test_worker_user.sh - the production rule for unprivileged workers: master
# as root reads the root-owned 0600 PIN file; workers run as "nobody" with
# the SoftHSM2 token directory owned by nobody, re-initialise PKCS#11 after
# fork and keep deriving keys across epochs.
#
# Threat: workers that cannot use the token after fork silently stop issuing
# tickets once the epochs cached by the master pass.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
[ -z "$why" ] && ! id nobody >/dev/null 2>&1 && why="no user nobody"
[ -z "$why" ] && [ "$(id -u)" != 0 ] && why="needs root to start nginx with user nobody"
if [ -n "$why" ]; then tap_skip "nginx worker-user suite" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=2s NGX_LIFETIME=4s
lab_host S1 fleet && ngx_lab_init
tap_ok $? "token S1"

P=$(lab_port)
ngx_conf S1 127.0.0.11 "$P" "$S1_URI"
sed -i "s/^user root;/user nobody $(id -gn nobody);/" "$LAB/S1/nginx.conf"
chown -R nobody "$LAB/S1/tokens" && chmod 644 "$LAB/S1/softhsm2.conf"
[ "$(stat -c '%U %a' "$S1_PIN_FILE")" = "root 600" ]
tap_ok $? "PIN file stays root-owned, mode 0600; token directory owned by nobody"

ngx_start S1 S1
tap_ok $? "nginx starts with workers as nobody"
[ "$(ps -o user= --ppid "$(lab_pid S1)" | sort -u)" = nobody ]
tap_ok $? "the workers run as nobody"

# 6 s with 2 s epochs: the workers must derive at least two new epochs.
probe_rate --duration 6 --interval 30 --tls1.3 "127.0.0.11:$P"
[ "$PROBE_FAILED" = 0 ] && at_least_99 "$PROBE_RESUMED" "$PROBE_RECONNECTS" && [ "$PROBE_EPOCHS" -ge 3 ]
tap_ok $? "unprivileged workers issue and resume tickets across epochs ($PROBE_RESUMED of $PROBE_RECONNECTS, $PROBE_EPOCHS epochs)"
! grep -E '\[(emerg|alert|crit|warn)\].*hsmkeys' "$LAB/S1/error.log"
tap_ok $? "no hsmkeys warning in the error log"
tap_done
