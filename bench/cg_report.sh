#!/bin/bash
# cg_report.sh - item 7: turn the callgrind parts of `hsmkeys-bench cg all`
# into ROW lines: instructions per call of the ticket callback's encrypt and
# decrypt paths (and of the library's key lookup inside them), and per whole
# resumed handshake with built-in keys and with the callback.
#   bash bench/cg_report.sh OUT_DIR   (reads OUT/cg-parts.txt, OUT/callgrind.out.K)
set -uo pipefail
OUT=$1
k=0
incl() { # FILE SYMBOL -> inclusive Ir of the function (0 if absent)
    callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
        awk -v s=":$2 [" 'index($0, s) { gsub(",", "", $1); print $1; found=1; exit } END { if (!found) print 0 }'
}
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'; }
row() { awk -v l="$1" -v v="$2" -v n="$3" 'BEGIN { x = v / n; printf "ROW|7 callgrind|%s|%.0f|%.0f|%.0f|instructions\n", l, x, x, x }'; }
while read -r tag name n; do
    [ "$tag" = PART ] || continue
    k=$((k + 1)); f=$OUT/callgrind.out.$k
    [ -f "$f" ] || { echo "cg_report: $f missing" >&2; exit 1; }
    case $name in
        enc) row "callback encrypt path (TLS 1.2 ticket issued), per call" "$(incl "$f" hk_ticket_key_cb)" "$n"
             row "  of which hsmkeys_encrypt_key (ring lookup)" "$(incl "$f" hsmkeys_encrypt_key)" "$n" ;;
        dec) row "callback decrypt path (TLS 1.2 resumption), per call" "$(incl "$f" hk_ticket_key_cb)" "$n"
             row "  of which hsmkeys_decrypt_key (name check, ring lookup)" "$(incl "$f" hsmkeys_decrypt_key)" "$n" ;;
        b13) row "TLS 1.3 resumed handshake, both ends, built-in keys" "$(total "$f")" "$n" ;;
        h13) row "TLS 1.3 resumed handshake, both ends, hsmkeys callback" "$(total "$f")" "$n" ;;
        b12) row "TLS 1.2 resumed handshake, both ends, built-in keys" "$(total "$f")" "$n" ;;
        h12) row "TLS 1.2 resumed handshake, both ends, hsmkeys callback" "$(total "$f")" "$n" ;;
    esac
done < "$OUT/cg-parts.txt"
