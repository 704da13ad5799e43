#!/bin/bash
# ceremony-host-a-wrap.sh - clone ceremony, part 2, on host A (the token that
# holds the master): have the security officer trust B's transport key, then
# wrap the master for it into a blob only B's token can open.
#
# Threat: a swapped public key would send the master to an attacker, so the
# key's fingerprint must equal the one B's operator read out (given with
# --expect-fingerprint, or confirmed on the terminal) before the security
# officer trusts it.  The master is created
# clonable only if asked (--create) and stays extractable only under trusted
# keys until ceremony-host-a-seal.sh.
usage() {
    cat <<'U'
usage: ceremony-host-a-wrap.sh --token LABEL --pub PUBFILE --out BLOB
          [--expect-fingerprint HEX] [--name HOSTNAME] [--create] [--generation N]
          [--pin-source FILE] [--so-pin-source FILE] [--module PATH] [--label LABEL]
--create generates a clonable master first if the token has none.
Without --expect-fingerprint the operator confirms the fingerprint on the terminal.
Next, on host B: ceremony-host-b-import.sh --blob BLOB --expect-kcv KCV
U
}
. "$(dirname "$0")/ceremony-lib.sh"
PUB= OUT= EXPECT_FP= NAME= CREATE=0 GEN=()
while [ $# -gt 0 ]; do
    case "$1" in
        --pub) PUB=${2:-}; shift 2 ;;
        --out) OUT=${2:-}; shift 2 ;;
        --expect-fingerprint) EXPECT_FP=${2:-}; shift 2 ;;
        --name) NAME=${2:-}; shift 2 ;;
        --generation) GEN=(--generation "${2:-}"); shift 2 ;;
        --create) CREATE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) rc=0; common_opt "$1" "${2:-}" || rc=$?
           case $rc in 0) shift 2 ;; 1) shift ;; *) usage >&2; die "unknown option $1" ;; esac ;;
    esac
done
add_token_args
[ -n "$PUB" ] && [ -r "$PUB" ] || die "--pub PUBFILE (host B's transport public key) is required"
[ -n "$OUT" ] || die "--out BLOB is required"
[ ! -e "$OUT" ] || die "$OUT exists: move it away first"

step "open token '$TOKEN' and find the master"
tool status "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" || die "cannot open token '$TOKEN'"
if printf '%s\n' "$TOOL_OUT" | grep -q '^master .*: 0 generations'; then
    [ $CREATE = 1 ] || die "token '$TOKEN' holds no master: pass --create to generate a clonable one"
    step "generate a clonable master inside the token"
    tool create "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" --clonable "${GEN[@]}" || die "create failed"
fi
if printf '%s\n' "$TOOL_OUT" | grep -q 'DANGER'; then die "the token holds an unsafe master (see above)"; fi
ok "master present"

step "check host B's public key against the fingerprint B's operator read out"
FILE_FP=$(openssl pkey -pubin -in "$PUB" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1) ||
    die "$PUB is not a public key file"
[ ${#FILE_FP} = 64 ] || die "$PUB is not a public key file"
if [ -n "$EXPECT_FP" ]; then same "$FILE_FP" "$EXPECT_FP" "fingerprints of B's key (file vs. phone)"
else confirm "Host B's operator read out fingerprint $FILE_FP"; fi

step "security officer: trust host B's transport key"
tool trust "${TOKEN_ARGS[@]}" "${SO_PIN_ARGS[@]}" --in "$PUB" --expect-fingerprint "$FILE_FP" ${NAME:+--name "$NAME"} || die "trust failed"
same "$(field fingerprint)" "$FILE_FP" "fingerprints of the key now trusted on the token and of the file"

step "wrap the master for host B"
tool wrap "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" --to "$PUB" --out "$OUT" "${GEN[@]}" || die "wrap failed"
KCV=$(field kcv)
[ ${#KCV} = 16 ] || die "no key check value reported"
ok "blob $OUT"

step "hand over"
cat <<EOT
  Send $OUT to host B (only B's token can open it).
  Read this key check value to host B's operator over the phone:
      $KCV
  Host B runs: ceremony-host-b-import.sh --blob $(basename "$OUT") --expect-kcv $KCV ...
  When every host reported back the same value, seal: ceremony-host-a-seal.sh --expect-kcv $KCV
EOT
echo "kcv $KCV"
