#!/bin/bash
# table.sh - print the ROW lines of a results file as one table.
#   bash bench/table.sh RESULTS
awk -F'|' '
    BEGIN { printf "%-22s %-92s %12s %12s %12s  %s\n", "item", "measurement", "min", "median", "max", "unit"
            line = sprintf("%170s", ""); gsub(/ /, "-", line); print line }
    $1 == "ROW" { item = ($2 == last) ? "" : $2; last = $2
                  printf "%-22s %-92s %12s %12s %12s  %s\n", item, $3, $4, $5, $6, $7 }' "$1"
