# ceremony-lib.sh - shared helpers of the ceremony scripts (sourced, not run).
#
# Owns: finding hsmkeys-tool, numbered steps that stop at the first failure,
# and operator confirmations.  Threat: a ceremony step that silently fails or
# is skipped (a fingerprint nobody compared, a seal before the clone was
# checked).  Every step's output is checked; comparisons the operator must
# make over a second channel are either given as --expect-* options or asked
# for on the terminal, never assumed.  No PIN ever passes through here: the
# scripts hand pin-source file paths to hsmkeys-tool, or let it prompt.
set -euo pipefail

HKT=${HSMKEYS_TOOL:-}
_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
find_tool() {
    [ -n "$HKT" ] && return 0
    if [ -x "$_lib_dir/../build/hsmkeys-tool" ]; then HKT=$_lib_dir/../build/hsmkeys-tool
    elif command -v hsmkeys-tool >/dev/null 2>&1; then HKT=$(command -v hsmkeys-tool)
    else echo "hsmkeys-tool not found: install it (make install) or set HSMKEYS_TOOL=/path/to/hsmkeys-tool" >&2; exit 1; fi
}
_step=0
TOOL_OUT=

step() { _step=$((_step + 1)); printf '\n[step %d] %s\n' "$_step" "$*"; }
ok()   { printf '  ok: %s\n' "$*"; }
die()  { printf '\nCEREMONY STOPPED at step %d: %s\n' "$_step" "$*" >&2; exit 1; }

# tool ARGS...: run hsmkeys-tool, show its output, keep it in TOOL_OUT.
tool() {
    local rc=0
    find_tool
    TOOL_OUT=$("$HKT" "$@" 2>&1) || rc=$?
    printf '%s\n' "$TOOL_OUT" | sed 's/^/  | /'
    return $rc
}

# field WORD: the value after "WORD " on the last line of TOOL_OUT starting so.
field() { printf '%s\n' "$TOOL_OUT" | awk -v w="$1" '$1 == w { v = $NF } END { print v }'; }

# confirm QUESTION: the operator must type "yes" on the terminal.
confirm() {
    local a
    if [ "${CEREMONY_YES:-}" = 1 ]; then ok "$1 (confirmed by --yes)"; return 0; fi
    [ -r /dev/tty ] || die "$1: no terminal to ask on; pass the value with the --expect-* option"
    printf '  %s [type yes]: ' "$1" > /dev/tty
    read -r a < /dev/tty || a=
    [ "$a" = yes ] || die "not confirmed: $1"
}

# same A B WHAT: A and B must be equal (case-insensitive, separators ignored).
same() {
    local a b
    a=$(printf '%s' "$1" | tr -d ' :-' | tr 'A-F' 'a-f'); b=$(printf '%s' "$2" | tr -d ' :-' | tr 'A-F' 'a-f')
    [ -n "$a" ] && [ "$a" = "$b" ] || die "$3 differ: '$1' vs '$2'. Stop and find out why before going on"
    ok "$3 match: $a"
}

# token_args: the token selection and PIN options common to every script.
TOKEN_ARGS=()
add_token_args() {
    [ -n "${TOKEN:-}" ] || die "--token LABEL is required"
    TOKEN_ARGS=(--token "$TOKEN")
    [ -n "${MODULE:-}" ] && TOKEN_ARGS+=(--module "$MODULE")
    [ -n "${LABEL:-}" ] && TOKEN_ARGS+=(--label "$LABEL")
    PIN_ARGS=(); [ -n "${PIN_SOURCE:-}" ] && PIN_ARGS=(--pin-source "$PIN_SOURCE")
    SO_PIN_ARGS=(); [ -n "${SO_PIN_SOURCE:-}" ] && SO_PIN_ARGS=(--so-pin-source "$SO_PIN_SOURCE")
    return 0
}

# Parse the options all scripts share; the rest go to the caller's handler.
common_opt() {
    case "$1" in
        --token) TOKEN=$2 ;;
        --module) MODULE=$2 ;;
        --label) LABEL=$2 ;;
        --pin-source) PIN_SOURCE=$2 ;;
        --so-pin-source) SO_PIN_SOURCE=$2 ;;
        --yes) CEREMONY_YES=1; return 1 ;;
        *) return 2 ;;
    esac
    return 0
}
