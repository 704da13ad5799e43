# probe_summary.sh - the one reader of hsmkeys-probe's results in tests and
# benchmarks: the line `hsmkeys-probe --summary FILE` writes (keys and their
# meaning: tools/probe/summary.c, hsmkeys-probe(1)).
#
#   probe_summary FILE PREFIX   sets PREFIX_<key> for every key of the line
#                               (PREFIX_connections, PREFIX_rate, ...);
#                               returns 1, setting nothing, when the file is
#                               missing or not a v=1 summary.
#   probe_pct A B               A * 100 / B with two decimals (0.00 if B is 0)
# Values are checked to be numbers before they are assigned, so a damaged
# file cannot inject shell code.

probe_summary() {
    local file=$1 prefix=$2 line kv k v
    [ -r "$file" ] || return 1
    line=$(grep -m1 '^hsmkeys-probe-summary v=1 ' "$file") || return 1
    for kv in ${line#hsmkeys-probe-summary }; do
        k=${kv%%=*} v=${kv#*=}
        [[ $k =~ ^[a-z_]+$ && $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || return 1
    done
    for kv in ${line#hsmkeys-probe-summary }; do
        printf -v "${prefix}_${kv%%=*}" '%s' "${kv#*=}"
    done
}

probe_pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? 100.0 * a / b : 0 }'; }
