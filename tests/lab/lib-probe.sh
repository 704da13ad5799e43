# lib-probe.sh - reading hsmkeys-probe CSV files in tests (awk, no python).
# Columns: 1 client 2 seq 3 id 4 backend 5 ok 6 reconnect 7 offered
# 8 resumed 9 version 10 handshake_ms 11 offered_name 12 offered_epoch
# 13 new_name 14 new_epoch 15 lifetime_hint 16 renewed 17 error
# (renewed is column 16; column 17 is the error text).

# csv_count CSV AWK-CONDITION: completed connections matching the condition.
csv_count() { awk -F, 'NR > 1 && $5 == 1 && ('"$2"') { n++ } END { print n + 0 }' "$1"; }

# csv_rate CSV: resumed reconnects in percent, one decimal (-1: no reconnect).
csv_rate() {
    awk -F, 'NR > 1 && $5 == 1 && $6 == 1 { n++; r += $8 }
             END { if (n) printf "%.1f\n", 100 * r / n; else print -1 }' "$1"
}

# csv_epochs CSV: distinct hsmkeys epochs of the tickets received.
csv_epochs() { awk -F, 'NR > 1 && $14 != "" { print $14 }' "$1" | sort -u; }

# check_ge A B: A >= B (decimals).
check_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# summary_matches_csv OUT CSV: "resumed R of N reconnects" equals the CSV's.
summary_matches_csv() {
    local line r n
    line=$(grep -E '^resumed [0-9]+ of [0-9]+ reconnects' "$1") || return 1
    r=$(echo "$line" | awk '{ print $2 }') n=$(echo "$line" | awk '{ print $4 }')
    [ "$r" = "$(csv_count "$2" '$6 == 1 && $8 == 1')" ] && [ "$n" = "$(csv_count "$2" '$6 == 1')" ]
}

# epochs_in_schedule CSV EPOCH_SECONDS T0 T1: every ticket epoch lies in
# [T0/P - 1, T1/P + 1] (the +-1 is the server's derive-ahead and skew margin).
epochs_in_schedule() {
    awk -F, -v p="$2" -v t0="$3" -v t1="$4" '
        NR > 1 && $14 != "" { e = $14 + 0; n++
            if (e < int(t0 / p) - 1 || e > int(t1 / p) + 1) { bad++; print "# epoch " e " outside " int(t0/p) ".." int(t1/p) } }
        END { exit (bad || !n) }' "$1"
}
