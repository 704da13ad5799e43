#!/bin/bash
# test_worker_access.sh - nginx and the worker user's access to the token
# (engine/nginx/ngx_hsmkeys_user.c), with the build tree's module:
#   - nginx -t as root with "user nobody" and a token only root can open:
#     refused, naming the user, the path and the fix;
#   - once nobody owns the token, nginx starts and resumes; when the token is
#     taken away from nobody later, each worker's key maintainer failure is
#     followed by one plain-words line naming the file it cannot open.
# Threat: workers that silently stop issuing tickets when the keys derived
# before the fork run out.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"

why=$(ngx_missing)
[ -z "$why" ] && ! id nobody >/dev/null 2>&1 && why="no user nobody"
[ -z "$why" ] && [ "$(id -u)" != 0 ] && why="needs root to start nginx with user nobody"
if [ -n "$why" ]; then tap_skip "nginx worker access suite" "$why"; tap_done; exit; fi

lab_init
NGX_EPOCH=2s NGX_LIFETIME=4s
lab_host S1 fleet && ngx_lab_init
tap_ok $? "token S1"
P=$(lab_port)
ngx_conf S1 127.0.0.1 "$P" "$S1_URI"
sed -i "s/^user root;/user nobody $(id -gn nobody);/" "$LAB/S1/nginx.conf"
chmod 700 "$LAB/S1/tokens"

ngx_test S1 S1; rc=$?
grep emerg "$LAB/S1/t.out" | sed 's/^/#   /'
[ $rc != 0 ] && grep -qF "the worker processes (user \"nobody\") cannot use the token: nobody cannot open SoftHSM2's token directory $LAB/S1/tokens (root:root, mode 0700): Permission denied; fix: " "$LAB/S1/t.out"
tap_ok $? "nginx -t refuses a token directory only root can open, naming user, path and fix"

chown -R nobody "$LAB/S1/tokens"
ngx_test S1 S1
tap_ok $? "nginx -t accepts it once nobody owns the token"
: > "$LAB/S1/error.log"
ngx_start S1 S1
tap_ok $? "nginx starts, workers as nobody"
probe_rate --duration 3 --interval 30 --tls1.3 "127.0.0.1:$P"
[ "$PROBE_FAILED" = 0 ] && at_least_99 "$PROBE_RESUMED" "$PROBE_RECONNECTS"
tap_ok $? "resumes: $PROBE_RESUMED of $PROBE_RECONNECTS"

# A reload runs the check again inside the running master (SIGCHLD blocked).
# Its INFO line reaches error.log only then: at start nginx logs to stderr
# at NOTICE until it has read error_log.
ngx_reload S1 S1 && probe_rate --duration 2 --interval 30 --tls1.3 "127.0.0.1:$P" >/dev/null \
    && [ "$PROBE_FAILED" = 0 ] && at_least_99 "$PROBE_RESUMED" "$PROBE_RECONNECTS" \
    && ! grep -E '\[(emerg|alert|crit)\]' "$LAB/S1/error.log" \
    && grep -q 'the worker user "nobody" can use the token (checked by deriving as that user)' "$LAB/S1/error.log"
tap_ok $? "nginx -s reload checks the worker user again and keeps resuming ($PROBE_RESUMED of $PROBE_RECONNECTS)"

# The token is taken away: the next epoch's derivation fails in each worker.
chown -R root "$LAB/S1/tokens"
for _ in $(seq 1 100); do
    [ "$(grep -c 'can no longer use the token' "$LAB/S1/error.log")" -ge 2 ] && break
    sleep 0.1
done
sleep 3   # more failing refreshes: the explanation must not repeat
grep 'can no longer use the token' "$LAB/S1/error.log" | head -2 | sed 's/^/#   /'
grep -qF "this worker (user \"nobody\") can no longer use the token: nobody cannot open " "$LAB/S1/error.log" \
    && grep -q "fix: " "$LAB/S1/error.log"
tap_ok $? "a worker that loses the token says which file it cannot open and the fix"
n=$(grep -c 'can no longer use the token' "$LAB/S1/error.log")
f=$(grep '\[error\].*hsmkeys: ' "$LAB/S1/error.log" | grep -vc 'can no longer use the token')
echo "# explanations: $n, other hsmkeys errors (the maintainer's failures): $f"
[ "$n" = 2 ] && [ "$f" -ge 1 ]
tap_ok $? "explained once by each of the 2 workers ($n explanations; $f failure lines)"
tap_done
