#!/bin/bash
# ceremony-host-b-prepare.sh - clone ceremony, part 1, on host B (the token
# that will receive the master): make B's transport key pair and export its
# public half to a file safe to send by mail.
#
# Threat: B's private transport key must never leave B's token (it is made
# UNWRAP-only and non-extractable); the public key may travel openly, but A's
# operator must hear its fingerprint from B's operator over a second channel.
usage() {
    cat <<'U'
usage: ceremony-host-b-prepare.sh --token LABEL --out PUBFILE [--pin-source FILE]
                                  [--module PATH] [--label MASTER_LABEL]
Makes (or re-exports) token LABEL's transport key and writes its public key to
PUBFILE.  Send PUBFILE to host A; read the printed fingerprint to A's operator.
Next, on host A: ceremony-host-a-wrap.sh
U
}
. "$(dirname "$0")/ceremony-lib.sh"
OUT=
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=${2:-}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) rc=0; common_opt "$1" "${2:-}" || rc=$?
           case $rc in 0) shift 2 ;; 1) shift ;; *) usage >&2; die "unknown option $1" ;; esac ;;
    esac
done
add_token_args
[ -n "$OUT" ] || die "--out PUBFILE is required"
[ ! -e "$OUT" ] || die "$OUT exists: move it away first"

step "open token '$TOKEN' and look at it"
tool status "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" || die "cannot open token '$TOKEN' (see above)"
have_key=0
printf '%s\n' "$TOOL_OUT" | grep -q '^  hsmkeys-transport ' && have_key=1
ok "token '$TOKEN' opened"

if [ $have_key = 1 ]; then
    step "export the existing transport public key"
    tool transport-export "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" --out "$OUT" || die "export failed"
else
    step "generate the transport key pair inside the token"
    tool transport-keygen "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" --out "$OUT" || die "key generation failed"
fi
FP=$(field fingerprint)
[ ${#FP} = 64 ] || die "no fingerprint reported"
grep -q 'BEGIN PUBLIC KEY' "$OUT" || die "$OUT does not hold a PEM public key"
ok "public key in $OUT"

step "hand over"
cat <<EOT
  Send $OUT to host A's operator (mail is fine: it is a public key).
  Read this fingerprint to host A's operator over the phone:
      $FP
  Host A runs: ceremony-host-a-wrap.sh --pub $(basename "$OUT") --expect-fingerprint $FP ...
EOT
echo "fingerprint $FP"
