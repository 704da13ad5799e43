#!/bin/bash
# ceremony-host-b-import.sh - clone ceremony, part 3, on host B: unwrap the
# blob from host A into B's token, as SENSITIVE and non-extractable, and check
# that B now holds the same master as A.
#
# Threat: a blob made by someone else for B's (public) transport key; the key
# check value A's operator read out must match (--expect-kcv), and the
# imported master must show sensitive=yes extractable=no.
usage() {
    cat <<'U'
usage: ceremony-host-b-import.sh --token LABEL --blob BLOB --expect-kcv HEX
          [--pin-source FILE] [--module PATH]
Next: report the printed kcv to host A's operator, who seals when every clone is done.
U
}
. "$(dirname "$0")/ceremony-lib.sh"
BLOB= KCV=
while [ $# -gt 0 ]; do
    case "$1" in
        --blob) BLOB=${2:-}; shift 2 ;;
        --expect-kcv) KCV=${2:-}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) rc=0; common_opt "$1" "${2:-}" || rc=$?
           case $rc in 0) shift 2 ;; 1) shift ;; *) usage >&2; die "unknown option $1" ;; esac ;;
    esac
done
add_token_args
[ -n "$BLOB" ] && [ -r "$BLOB" ] || die "--blob FILE (from host A) is required"
[ -n "$KCV" ] || die "--expect-kcv HEX (read out by host A's operator) is required"

step "unwrap the master into token '$TOKEN'"
tool unwrap "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" --in "$BLOB" --expect-kcv "$KCV" || die "unwrap refused (see above)"
GEN=$(printf '%s\n' "$TOOL_OUT" | awk '$1 == "kcv" { print $2 }')
same "$(field kcv)" "$KCV" "key check values (token B vs. host A)"

step "verify from a fresh session"
tool verify "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" --generation "$GEN" --expect-kcv "$KCV" || die "verify failed"
ok "token '$TOKEN' holds generation $GEN"

step "check the imported master's attributes"
tool status "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" || die "status failed"
attrs=$(printf '%s\n' "$TOOL_OUT" | awk -v g="$GEN" '$1 == "generation" { cur = ($2 == g || $2 == g":") } cur && /sensitive=/ { print; exit }')
case "$attrs" in
    *" sensitive=yes extractable=no "*|"sensitive=yes extractable=no "*|*"sensitive=yes extractable=no"*) ok "sensitive, not extractable" ;;
    *) die "generation $GEN is not sensitive and non-extractable: '$attrs'" ;;
esac

step "report back"
echo "  Tell host A's operator: token $TOKEN holds generation $GEN with kcv $KCV"
echo "kcv $GEN $KCV"
