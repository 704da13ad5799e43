#!/bin/bash
# p11kit-share-token.sh - serve one token to several servers with
# `p11-kit server`; each server uses it through p11-kit-client.so.
#
# Owns: the shared-token set-up (one master in one token, no cloning).
# Threat: the socket gives PKCS#11 access to the token: anyone who can
# connect to it and knows the user PIN can use the master (not read it: it
# stays sensitive and non-extractable).  Keep the socket in a directory only
# the servers' user can reach (--user/--group restrict it further), and carry
# it between hosts only over an authenticated channel (ssh -L of the unix
# socket, see docs/PROVISIONING.md), never a plain TCP port.
usage() {
    cat <<'U'
usage: p11kit-share-token.sh --token LABEL --socket PATH [--module PATH]
                             [--user USER] [--group GROUP]
Runs `p11-kit server` in the foreground (for systemd or a supervisor), serving
token LABEL of MODULE [/usr/lib/softhsm/libsofthsm2.so] on the unix socket PATH.
Servers then use, in their hsmkeys configuration:
  uri  pkcs11:token=LABEL;object=hsmkeys-master?module-path=<p11-kit-client.so>&pin-source=FILE
and in their environment P11_KIT_SERVER_ADDRESS=unix:path=PATH.
U
}
set -euo pipefail
TOKEN= SOCKET= MODULE=/usr/lib/softhsm/libsofthsm2.so EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --token) TOKEN=${2:-}; shift 2 ;;
        --socket) SOCKET=${2:-}; shift 2 ;;
        --module) MODULE=${2:-}; shift 2 ;;
        --user) EXTRA+=(-u "${2:-}"); shift 2 ;;
        --group) EXTRA+=(-g "${2:-}"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$TOKEN" ] && [ -n "$SOCKET" ] || { usage >&2; exit 2; }
command -v p11-kit >/dev/null || { echo "p11-kit not installed: apt-get install p11-kit" >&2; exit 1; }
[ -r "$MODULE" ] || { echo "module $MODULE not found: pass --module PATH" >&2; exit 1; }
CLIENT=$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/pkcs11)/p11-kit-client.so
[ -r "$CLIENT" ] || CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
dir=$(dirname "$SOCKET")
[ -d "$dir" ] || { echo "directory $dir does not exist" >&2; exit 1; }
case "$(stat -c %a "$dir")" in
    *[2367]?|*?[2367]) echo "directory $dir is writable by group or others: anyone could replace the socket; use a private directory" >&2; exit 1 ;;
esac
# A socket left by a server that died (p11-kit does not remove it) is
# replaced; one that a live server answers on, or any other file, is not.
if [ -e "$SOCKET" ] || [ -L "$SOCKET" ]; then
    [ -S "$SOCKET" ] && [ ! -L "$SOCKET" ] || { echo "$SOCKET exists and is not a socket: refusing to replace it" >&2; exit 1; }
    if python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])' "$SOCKET" 2>/dev/null; then
        echo "$SOCKET: a p11-kit server is already listening there; stop it first or pick another --socket" >&2
        exit 1
    fi
    echo "p11kit-share-token: removing stale socket $SOCKET (nothing listens on it)" >&2
    rm -f "$SOCKET"
fi
T=${HSMKEYS_TOOL:-$(command -v hsmkeys-tool || echo "$(dirname "$0")/../build/hsmkeys-tool")}
if [ -x "$T" ]; then
    listing=$("$T" status --module "$MODULE" 2>&1) || true
    if ! printf '%s\n' "$listing" | grep -q "token '$TOKEN'"; then
        printf '%s\n' "$listing" >&2
        echo "module $MODULE shows no token '$TOKEN' (see the listing above)" >&2
        exit 1
    fi
fi
cat >&2 <<EOT
p11kit-share-token: serving token '$TOKEN' of $MODULE on $SOCKET
  servers: P11_KIT_SERVER_ADDRESS=unix:path=$SOCKET
           uri pkcs11:token=$TOKEN;object=hsmkeys-master?module-path=$CLIENT&pin-source=FILE
EOT
exec p11-kit server -f --provider "$MODULE" -n "$SOCKET" "${EXTRA[@]}" "pkcs11:token=$TOKEN"
