#!/bin/bash
# deb_packages.sh - the Debian packages (make deb, build/deb/*.deb) on this
# machine: install them with apt-get, run two nginx and two Apache httpd from
# the installed files (modules loaded through the packaged snippets) behind
# HAProxy, follow the README's nginx example with `user www-data;` on a token
# www-data cannot open (nginx -t must refuse it and name the fix; after the
# fix of docs/OPERATIONS.md, reconnects resume), verify the feeder's unit,
# then purge and check that no file of the packages is left.
#
# Run by `make check-deb` (its own .ci/run step), as root: it installs
# packages system-wide, so the EXIT trap purges them even on failure and
# gives www-data back its groups (the test adds it to softhsm, or takes it
# out first when it was a member).  Servers, configs and tokens live in $LAB on
# 127.0.0.1, never the system services.  Threat: packages that install but
# do not work, or leave files behind; a README example that starts and then
# silently stops resuming.
set -u   # no pipefail: "grep -q" closing a pipe must not fail a check
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
source "$HSMKEYS_ROOT/tests/nginx/nginx_lab.sh"
source "$HSMKEYS_ROOT/tests/apache/apache_lab.sh"

DEBS=$HSMKEYS_BUILD/deb
PROBE=/usr/bin/hsmkeys-probe AP_PROBE=/usr/bin/hsmkeys-probe
UNIT=/lib/systemd/system/hsmkeys-haproxy-feeder.service

why=""
[ "$(id -u)" = 0 ] || why="needs root (installs packages)"
[ -z "$why" ] && { ls "$DEBS"/*.deb >/dev/null 2>&1 || why="no packages in $DEBS (make deb)"; }
for c in apt-get dpkg nginx apache2 haproxy openssl python3; do
    [ -z "$why" ] && ! command -v "$c" >/dev/null && why="$c not installed (make deps)"
done
if [ -n "$why" ]; then tap_skip "Debian packages" "$why"; tap_done; exit; fi

mapfile -t PKGS < <(for d in "$DEBS"/*.deb; do dpkg-deb -f "$d" Package; done | sort -u)
APT=(apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
www_was_in_softhsm=0
id -nG www-data | tr ' ' '\n' | grep -qx softhsm && www_was_in_softhsm=1

deb_cleanup() {
    lab_cleanup_servers
    if dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -q "installed"; then
        echo "# purging the packages (cleanup)"
        DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge "${PKGS[@]}" >/dev/null 2>&1
    fi
    if [ "$www_was_in_softhsm" = 1 ]; then usermod -aG softhsm www-data
    else gpasswd -d www-data softhsm >/dev/null 2>&1; fi
    lab_cleanup
}
# Servers first (they hold the modules), then the packages, then $LAB.
lab_cleanup_servers() {
    local f
    for f in "$LAB"/pids/*; do [ -f "$f" ] && lab_stop "$(basename "$f")"; done
}
lab_init
trap deb_cleanup EXIT
# The README case starts from Debian's default: www-data outside softhsm
# (given back at the end if it was a member).
[ "$www_was_in_softhsm" = 1 ] && gpasswd -d www-data softhsm >/dev/null 2>&1

# A stale install (an interrupted run) would hide what this one installs.
DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge "${PKGS[@]}" >/dev/null 2>&1

# ---- install --------------------------------------------------------------
(cd "$DEBS" && DEBIAN_FRONTEND=noninteractive "${APT[@]}" install --no-install-recommends ./*.deb) \
    >"$LAB/install.log" 2>&1
rc=$?; [ $rc = 0 ] || tail -20 "$LAB/install.log" | sed 's/^/#   /'
n=$(dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -c "install ok installed")
[ $rc = 0 ] && [ "$n" = "${#PKGS[@]}" ]
tap_ok $? "apt-get install ./*.deb installs all ${#PKGS[@]} packages ($n installed)"

ls /etc/nginx/modules-enabled/ | sed 's/^/# modules-enabled: /'
[ "$(readlink /etc/nginx/modules-enabled/60-mod-http-hsmkeys.conf)" = /usr/share/nginx/modules-available/mod-http-hsmkeys.conf ] \
    && [ "$(readlink /etc/nginx/modules-enabled/60-mod-stream-hsmkeys.conf)" = /usr/share/nginx/modules-available/mod-stream-hsmkeys.conf ]
tap_ok $? "nginx modules enabled by the packages: modules-enabled/60-mod-{http,stream}-hsmkeys.conf link to modules-available"

# a2enmod in a copy of /etc/apache2: the system's Apache stays as it is.
cp -a /etc/apache2 "$LAB/apache2-etc"
APACHE_CONFDIR=$LAB/apache2-etc a2enmod -q hsmkeys >"$LAB/a2enmod.log" 2>&1 \
    && [ "$(readlink "$LAB/apache2-etc/mods-enabled/hsmkeys.load")" = ../mods-available/hsmkeys.load ] \
    && [ -L "$LAB/apache2-etc/mods-enabled/ssl.load" ] \
    && [ ! -e /etc/apache2/mods-enabled/hsmkeys.load ]
tap_ok $? "libapache2-mod-hsmkeys: not enabled on installation; a2enmod hsmkeys enables it (and mod_ssl)"

# (--man=no only where man-db is missing: a fresh minimal Debian has none)
man_no=""
if command -v man >/dev/null; then v=$(systemd-analyze verify "$UNIT" 2>&1); rc=$?
else man_no=--man=no; v=$(systemd-analyze verify --man=no "$UNIT" 2>&1); rc=$?; echo "# no man(1): --man=no"; fi
[ -n "$v" ] && echo "$v" | sed 's/^/#   /'
[ $rc = 0 ] && [ -z "$v" ]
tap_ok $? "systemd-analyze verify $UNIT: no complaint"
grep -q '^EnvironmentFile=-/etc/default/hsmkeys-haproxy-feeder$' "$UNIT" && [ -f /etc/default/hsmkeys-haproxy-feeder ] \
    && grep -qx 'ExecStart=/usr/bin/hsmkeys-haproxy-feeder .*' <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$UNIT") \
    && [ -x /usr/bin/hsmkeys-haproxy-feeder ]
tap_ok $? "the feeder's unit reads /etc/default/hsmkeys-haproxy-feeder and runs the packaged binary"
# The example drop-ins for nginx's and Apache's own units, on those units.
dropins_ok=0
for u in nginx:libnginx-mod-http-hsmkeys/examples/nginx.service.d-hsmkeys.conf \
         apache2:libapache2-mod-hsmkeys/examples/apache2.service.d-hsmkeys.conf; do
    unit=${u%%:*}; ex=/usr/share/doc/${u#*:}
    mkdir -p "$LAB/units/$unit.service.d"
    cp "/lib/systemd/system/$unit.service" "$LAB/units/" && cp "$ex" "$LAB/units/$unit.service.d/hsmkeys.conf" || dropins_ok=1
    v=$(SYSTEMD_UNIT_PATH=$LAB/units: systemd-analyze verify ${man_no:-} "$LAB/units/$unit.service" 2>&1)
    [ $? = 0 ] && [ -z "$v" ] || { dropins_ok=1; echo "$v" | sed 's/^/#   /'; }
    grep -qx 'LimitMEMLOCK=8M' "$ex" && grep -qx 'LimitCORE=0' "$ex" || dropins_ok=1
done
tap_ok $dropins_ok "the packaged example drop-ins (LimitMEMLOCK, LimitCORE=0, SOFTHSM2_CONF) verify on nginx.service and apache2.service"
# Unconfigured, as shipped: a clear refusal, not a crash or a hang.
out=$(env -i PATH=/usr/bin:/bin /usr/bin/hsmkeys-haproxy-feeder --foreground --uri "" --domain "" 2>&1); rc=$?
echo "# $out"
[ $rc != 0 ] && grep -q "HSMKEYS_URI and HSMKEYS_DOMAIN in /etc/default/hsmkeys-haproxy-feeder" <<<"$out"
tap_ok $? "the feeder started with the unit's empty settings says what to set, and where"

# ---- a token laid out like Debian's SoftHSM2 (root:softhsm 0640 / 2770) --
SH=$LAB/softhsm
mkdir -p "$SH/etc" "$SH/lib/tokens"
WEB_CONF=$SH/etc/softhsm2.conf
printf 'directories.tokendir = %s/lib/tokens/\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$SH" > "$WEB_CONF"
chgrp -R softhsm "$SH/etc" "$SH/lib"
chmod 0750 "$SH/etc"; chmod 0640 "$WEB_CONF"; chmod 2770 "$SH/lib" "$SH/lib/tokens"
(umask 077; printf 'pin-%s' "$RANDOM$RANDOM" > "$LAB/pin"; printf 'so-%s' "$RANDOM$RANDOM" > "$LAB/so-pin")
SOFTHSM2_CONF=$WEB_CONF hsmkeys-tool init --token web --so-pin-source "$LAB/so-pin" --pin-source "$LAB/pin" >"$LAB/tool.log" 2>&1 \
    && SOFTHSM2_CONF=$WEB_CONF hsmkeys-tool create --token web --pin-source "$LAB/pin" >>"$LAB/tool.log" 2>&1
rc=$?; sed 's/^/#   /' "$LAB/tool.log"
tap_ok $rc "the packaged hsmkeys-tool initialises token \"web\" and creates its master"
WEB_URI="pkcs11:token=web;object=hsmkeys-master?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=$LAB/pin"

# ---- the README's nginx example ------------------------------------------
NGX_DOMAIN=www.example.com
ngx_lab_init
# ngx_readme NAME PORT: the README's nginx block, with this lab's paths.
ngx_readme() {
    local name=$1 port=$2 d=$LAB/$1
    mkdir -p "$d/logs" "$d/tmp"
    ln -sfn /usr/lib/nginx/modules "$d/modules"
    {
        echo "daemon off;"
        echo "pid $d/nginx.pid;"
        echo "error_log $d/error.log info;"
        python3 - "$HSMKEYS_ROOT/README.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = text.split("### nginx", 1)[1].split("```nginx\n", 1)[1].split("```", 1)[0]
print(block, end="")
PY
    } | sed -e "s|/etc/hsmkeys/pin|$LAB/pin|" \
            -e "s|listen 443 ssl default_server;|listen 127.0.0.1:$port ssl default_server;|" \
            -e "s|/etc/ssl/www.example.com.pem|$LAB/pki/cert.pem|" \
            -e "s|/etc/ssl/private/www.example.com.key|$LAB/pki/key.pem|" \
            -e "s|server {|server {\n        add_header X-Server $name always;\n        location / { return 200 \"server: $name\\\\n\"; }|" \
            -e "s|^http {|http {\n    access_log off;\n    client_body_temp_path $d/tmp/body;\n    proxy_temp_path $d/tmp/proxy;\n    fastcgi_temp_path $d/tmp/fastcgi;\n    uwsgi_temp_path $d/tmp/uwsgi;\n    scgi_temp_path $d/tmp/scgi;|" \
        > "$d/nginx.conf"
}
P1=$(lab_port); P2=$(lab_port); LBN=$(lab_port)
ngx_readme N1 "$P1"; ngx_readme N2 "$P2"
grep -q '^include /etc/nginx/modules-enabled/\*.conf;' "$LAB/N1/nginx.conf" && grep -q '^user www-data;' "$LAB/N1/nginx.conf" \
    && grep -q "hsmkeys_uri .*token=web" "$LAB/N1/nginx.conf"
tap_ok $? "README nginx example: modules through modules-enabled, user www-data, token web"

ngx_t() { SOFTHSM2_CONF=$WEB_CONF nginx -t -p "$LAB/$1" -c "$LAB/$1/nginx.conf" >"$LAB/$1/t.out" 2>&1; }
ngx_t N1; rc=$?
grep emerg "$LAB/N1/t.out" | sed 's/^/#   /'
[ $rc != 0 ] && grep -q 'the worker processes (user "www-data") cannot use the token: ' "$LAB/N1/t.out" \
    && grep -qF "www-data cannot open $SH/etc, on the way to SoftHSM2's configuration $WEB_CONF (root:softhsm, mode 0750): Permission denied; fix: add the user to the group \"softhsm\" (adduser www-data softhsm)" "$LAB/N1/t.out"
tap_ok $? "nginx -t refuses a token www-data cannot open, naming the user, the path and the fix (softhsm group)"

# The fix of docs/OPERATIONS.md ("nginx and SoftHSM2"), step 1: the group.
adduser --quiet www-data softhsm >/dev/null 2>&1 || usermod -aG softhsm www-data
ngx_t N1; rc=$?
grep emerg "$LAB/N1/t.out" | sed 's/^/#   /'
tokdir=$(ls -d "$SH"/lib/tokens/*/ | head -1); tokdir=${tokdir%/}
[ $rc != 0 ] && grep -qF "www-data cannot open a SoftHSM2 token directory $tokdir (root:softhsm, mode " "$LAB/N1/t.out" \
    && grep -qF "chown -R www-data $tokdir" "$LAB/N1/t.out"
tap_ok $? "in group softhsm, nginx -t names the token's own directory (private to root) and the chown that fixes it"

# Step 2: the workers' user owns the token.
chown -R www-data "$tokdir"
ngx_t N1 && ngx_t N2
rc=$?; tail -1 "$LAB/N1/t.out" | sed 's/^/#   /'
tap_ok $rc "after the documented fix nginx -t accepts both servers"

: > "$LAB/N1/error.log"; : > "$LAB/N2/error.log"   # the refused nginx -t runs logged there
SOFTHSM2_CONF=$WEB_CONF lab_spawn N1 nginx -p "$LAB/N1" -c "$LAB/N1/nginx.conf"
SOFTHSM2_CONF=$WEB_CONF lab_spawn N2 nginx -p "$LAB/N2" -c "$LAB/N2/nginx.conf"
lab_wait_port "$P1" && lab_wait_port "$P2" && lab_wait_children N1 1 && lab_wait_children N2 1 \
    && [ "$(ps -o user= --ppid "$(lab_pid N1)" | sort -u)" = www-data ]
tap_ok $? "two nginx from the installed module, workers as www-data"
lb_start lbn 127.0.0.1 "$LBN" "127.0.0.1:$P1" "127.0.0.1:$P2"
tap_ok $? "HAProxy round robin in front of them"
# one client: round robin sends each reconnect to the other server
probe_rate --sni www.example.com --clients 1 --count 40 --interval 20 "127.0.0.1:$LBN"
fleet_ok
tap_ok $? "nginx pair: $PROBE_RESUMED of $PROBE_RECONNECTS reconnects resumed, $PROBE_CROSS on the other server (>= 99%)"
! grep -E '\[(emerg|alert|crit|error|warn)\].*hsmkeys' "$LAB/N1/error.log" "$LAB/N2/error.log"
tap_ok $? "no hsmkeys error or warning in the nginx error logs"

# ---- two Apache httpd, the module through the packaged .load ------------
cp "$LAB/pin" "$LAB/pin-www"; chown www-data "$LAB/pin-www"; chmod 0400 "$LAB/pin-www"
WEB_URI="pkcs11:token=web;object=hsmkeys-master?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=$LAB/pin-www"
AP_MODULE=/usr/lib/apache2/modules/mod_hsmkeys.so
ap_tls_cert
A1=$(lab_port); A2=$(lab_port); LBA=$(lab_port)
for a in A1:$A1 A2:$A2; do
    ap_write_conf "${a%%:*}" 127.0.0.1 "${a#*:}" event WEB
    sed -i "s|^LoadModule hsmkeys_module .*|Include /etc/apache2/mods-available/hsmkeys.load|" "$LAB/apache-${a%%:*}/httpd.conf"
done
grep -q '^Include /etc/apache2/mods-available/hsmkeys.load$' "$LAB/apache-A1/httpd.conf" && ap_test A1 WEB
rc=$?; echo "$AP_OUT" | sed 's/^/#   /'
[ $rc = 0 ] && grep -q "Syntax OK" <<<"$AP_OUT"
tap_ok $? "apache2 -t with the packaged hsmkeys.load opens the token as www-data"
ap_start A1 WEB; ap_start A2 WEB
ap_wait A1 127.0.0.1 "$A1" && ap_wait A2 127.0.0.1 "$A2"
tap_ok $? "two Apache httpd (event MPM) serve TLS"
ap_lb 127.0.0.1 "$LBA" "127.0.0.1:$A1" "127.0.0.1:$A2"
ap_probe --clients 1 --count 40 --interval 20 "127.0.0.1:$LBA"
ap_rate_at_least 99 && [ "$AP_FAILED" = 0 ] && [ "$AP_BACKENDS" = 2 ]
tap_ok $? "Apache pair: $AP_RESUMED of $AP_OFFERED reconnects resumed across both servers (>= 99%)"

# ---- purge ---------------------------------------------------------------
lab_cleanup_servers
files=$LAB/package-files
for d in "$DEBS"/*.deb; do dpkg-deb -c "$d"; done | awk '{print $6}' | sed 's|^\./|/|' | grep -vx / | sort -u > "$files"
DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge "${PKGS[@]}" >"$LAB/purge.log" 2>&1
rc=$?; [ $rc = 0 ] || tail -20 "$LAB/purge.log" | sed 's/^/#   /'
tap_ok $rc "apt-get purge of the packages"
left=$(while read -r f; do
        # a directory of the packages may stay only when another package
        # owns it, or it is one of merged /usr's links (/lib -> usr/lib)
        case $f in
        */) f=${f%/}
            [ -d "$f" ] && [ ! -L "$f" ] && ! dpkg -S "$f" >/dev/null 2>&1 && echo "$f/" ;;
        *)  { [ -L "$f" ] || [ -e "$f" ]; } && echo "$f" ;;
        esac
    done < "$files"
    ls -d /etc/nginx/modules-enabled/*hsmkeys* /etc/apache2/mods-enabled/hsmkeys.* \
          /etc/default/hsmkeys-haproxy-feeder /etc/systemd/system/*/hsmkeys-haproxy-feeder.service \
          /var/lib/systemd/deb-systemd-helper-enabled/*hsmkeys* 2>/dev/null)
[ -n "$left" ] && echo "$left" | sed 's/^/#   left: /'
[ -z "$left" ] && ! dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -q "installed\|config-files"
tap_ok $? "after purge no file or directory of the packages is left ($(wc -l < "$files") paths checked)"
tap_done
