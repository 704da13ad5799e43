#!/bin/bash
# Install the Debian 12 packages hsmkeys needs, only those missing.
# Idempotent; run as root (make deps / make check / make demo call it).
set -euo pipefail
PKGS=(build-essential pkg-config libssl-dev libp11-kit-dev p11-kit softhsm2 opensc
      libengine-pkcs11-openssl libp11-dev haproxy nginx nginx-dev libnginx-mod-stream
      apache2 apache2-dev clang libclang-rt-14-dev valgrind iproute2 procps curl
      ca-certificates openssl socat python3 libnss3-tools
      debhelper dpkg-dev lintian prometheus
      redis-server redis-tools libhiredis-dev python3-cryptography)
# tpm2-pkcs11 on a software TPM (tests/modules/test_tpm2_pkcs11.sh, tests/lib/tpm.sh)
PKGS+=(swtpm swtpm-tools tpm2-abrmd tpm2-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools
       libtss2-tcti-tabrmd0 dbus-daemon python3-yaml)
[ "${HSMKEYS_DEPS_EXTRA:-}" ] && PKGS+=(${HSMKEYS_DEPS_EXTRA})
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
    echo "hsmkeys: missing packages: ${missing[*]}" >&2
    echo "hsmkeys: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "hsmkeys: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian starts services on install where it can; the tests start their own
# instances on loopback ports, so ask policy-rc.d to leave the daemons alone.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1; fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$created_policy" = 1 ] && rm -f "$policy"
exit 0
