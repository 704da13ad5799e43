# tpm.sh - a software TPM with tpm2-pkcs11 in the lab (source after lab.sh).
#
#   tpm_missing            prints why the stack cannot run here ("" if it can)
#   tpm_start              swtpm (socket mode, unix sockets in $LAB/tpm),
#                          dbus-daemon on a private session bus, tpm2-abrmd on
#                          it, and an empty tpm2-pkcs11 store; exports the
#                          environment the module and tpm2-tools read
#   tpm_token LABEL PINFILE SOPINFILE   a tpm2-pkcs11 token
#   tpm_objid LABEL KEYLABEL            tpm2_ptool's object id of a key
#
# Every process is recorded in $LAB/pids, so lab_cleanup stops exactly these.
# tpm2_ptool takes PINs only on its command line: the tokens are throwaway
# ones in the lab, their PINs random per run.
TPM_MODULE=${HSMKEYS_TPM2_MODULE:-/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so}

tpm_missing() {
    local c
    for c in swtpm tpm2-abrmd dbus-daemon tpm2_ptool tpm2_create tpm2_getrandom; do
        command -v "$c" >/dev/null || { echo "$c not installed (ci/deps.sh installs swtpm swtpm-tools tpm2-abrmd tpm2-tools libtpm2-pkcs11-tools dbus)"; return; }
    done
    [ -r "$TPM_MODULE" ] || { echo "$TPM_MODULE absent (apt-get install libtpm2-pkcs11-1)"; return; }
    [ -n "$(ls /usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so* 2>/dev/null)" ] ||
        { echo "libtss2-tcti-tabrmd0 not installed"; return; }
    python3 -c 'import yaml' 2>/dev/null || { echo "python3-yaml not installed (tpm_objid reads tpm2_ptool's YAML)"; return; }
    echo ""
}

tpm_start() {
    local d=$LAB/tpm out i
    mkdir -p "$d/state" "$d/store"
    lab_spawn swtpm swtpm socket --tpm2 --tpmstate dir="$d/state" \
        --server type=unixio,path="$d/tpm.sock" --ctrl type=unixio,path="$d/tpm.sock.ctrl" \
        --flags not-need-init,startup-clear
    for i in $(seq 1 100); do [ -S "$d/tpm.sock" ] && break; sleep 0.1; done
    [ -S "$d/tpm.sock" ] || { echo "# swtpm did not start:" >&2; tail -5 "$LAB/swtpm.log" >&2; return 1; }
    out=$(dbus-daemon --session --fork --nopidfile --print-address=1 --print-pid=1 \
          --address="unix:path=$d/bus") || { echo "# dbus-daemon did not start" >&2; return 1; }
    lab_record_pid dbus "$(printf '%s\n' "$out" | sed -n 2p)"
    export DBUS_SESSION_BUS_ADDRESS
    DBUS_SESSION_BUS_ADDRESS=$(printf '%s\n' "$out" | sed -n 1p)
    local root=(); [ "$(id -u)" = 0 ] && root=(--allow-root)
    lab_spawn abrmd tpm2-abrmd --session "${root[@]}" --tcti="swtpm:path=$d/tpm.sock" --flush-all
    export TPM2TOOLS_TCTI=tabrmd:bus_type=session TPM2_PKCS11_TCTI=tabrmd:bus_type=session
    export TPM2_PKCS11_STORE=$d/store
    for i in $(seq 1 100); do tpm2_getrandom 4 >/dev/null 2>&1 && break; sleep 0.1; done
    tpm2_getrandom 4 >/dev/null 2>&1 || { echo "# tpm2-abrmd does not answer:" >&2; tail -5 "$LAB/abrmd.log" >&2; return 1; }
    tpm2_ptool init --path "$d/store" >"$LAB/tpm-init.log" 2>&1 ||
        { cat "$LAB/tpm-init.log" >&2; return 1; }
}

tpm_token() {
    (umask 077; printf 'tpm-%s-%s' "$1" "$RANDOM$RANDOM" > "$2"; printf 'so-%s-%s' "$1" "$RANDOM$RANDOM" > "$3")
    tpm2_ptool addtoken --pid=1 --label="$1" --userpin="$(cat "$2")" --sopin="$(cat "$3")" \
        --path "$TPM2_PKCS11_STORE" >>"$LAB/tpm-token.log" 2>&1
}

tpm_objid() {
    tpm2_ptool listobjects --label "$1" --path "$TPM2_PKCS11_STORE" 2>/dev/null | python3 -c '
import sys, yaml
for o in yaml.safe_load(sys.stdin) or []:
    if o.get("CKA_LABEL") == sys.argv[1]:
        print(o["id"])' "$2"
}
