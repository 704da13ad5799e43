#!/bin/bash
# ceremony-host-a-seal.sh - clone ceremony, part 4, on host A: once every
# clone reported the key check value, make A's master non-extractable.
#
# Threat: sealing is one-way; sealing before every clone holds the master
# forces a new master for the whole fleet, while never sealing leaves a
# master that can still be wrapped.  This script checks A's key check value
# against every value the clones reported, then seals and checks the result.
usage() {
    cat <<'U'
usage: ceremony-host-a-seal.sh --token LABEL --expect-kcv HEX [--expect-kcv HEX ...]
          [--generation N] [--no-clone] [--pin-source FILE] [--module PATH]
Give one --expect-kcv per clone: the values the clones' operators reported.
U
}
. "$(dirname "$0")/ceremony-lib.sh"
KCVS=() GEN=() NOCLONE=()
while [ $# -gt 0 ]; do
    case "$1" in
        --expect-kcv) KCVS+=("${2:-}"); shift 2 ;;
        --generation) GEN=(--generation "${2:-}"); shift 2 ;;
        --no-clone) NOCLONE=(--no-clone); shift ;;
        -h|--help) usage; exit 0 ;;
        *) rc=0; common_opt "$1" "${2:-}" || rc=$?
           case $rc in 0) shift 2 ;; 1) shift ;; *) usage >&2; die "unknown option $1" ;; esac ;;
    esac
done
add_token_args
[ ${#KCVS[@]} -gt 0 ] || [ ${#NOCLONE[@]} -gt 0 ] || die "give --expect-kcv HEX for each clone (or --no-clone)"

step "key check value on token '$TOKEN'"
tool verify "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" "${GEN[@]}" || die "verify failed"
for k in "${KCVS[@]}"; do
    printf '%s\n' "$TOOL_OUT" | awk '$1 == "kcv" { print $3 }' | grep -ix >/dev/null "$(printf '%s' "$k" | tr -d ' :-')" \
        || die "a clone reported kcv $k, which no generation on '$TOKEN' has: that clone holds another master"
    ok "clone's kcv $k matches"
done

step "seal"
tool seal "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" "${GEN[@]}" "${NOCLONE[@]}" || die "seal refused (see above)"

step "check"
tool status "${TOKEN_ARGS[@]}" "${PIN_ARGS[@]}" || die "status failed"
if printf '%s\n' "$TOOL_OUT" | grep -q 'extractable=yes'; then
    [ ${#GEN[@]} -gt 0 ] || die "a generation is still extractable"
fi
ok "sealed"
