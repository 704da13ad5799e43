#!/bin/bash
# test_rules.sh - the shipped alert rules (engine/prometheus/hsmkeys.rules.yml)
# pass `promtool check rules`, and `promtool test rules` fires each of them on
# the series of its failure and none on a healthy fleet
# (hsmkeys.rules.test.yml); and the library's rendering (hsmkeys/src/
# metrics.c, through build/tests/metrics_test render) passes `promtool check
# metrics`.  Threat: alert rules that never fire, a scrape Prometheus rejects.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
lab_init
if ! command -v promtool >/dev/null; then
    tap_skip "alert rules" "promtool not installed (make deps: prometheus)"; if [ -x "$HSMKEYS_BUILD/tests/metrics_test" ]; then
    "$HSMKEYS_BUILD/tests/metrics_test" render > "$LAB/metrics.txt"; rc=$?
    out=$(promtool check metrics < "$LAB/metrics.txt" 2>&1); rc2=$?
    echo "$out" | sed 's/^/# /'
    [ $rc = 0 ] && [ $rc2 = 0 ] && [ -z "$out" ] && grep -q '^hsmkeys_info{' "$LAB/metrics.txt"
    tap_ok $? "promtool check metrics accepts hsmkeys_metrics_render()'s text ($(grep -vc '^#' "$LAB/metrics.txt") samples)"
else
    tap_skip "promtool check metrics" "metrics_test not built (make tests)"
fi
tap_done; exit
fi
out=$(promtool check rules "$HSMKEYS_ROOT/engine/prometheus/hsmkeys.rules.yml" 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
[ $rc = 0 ] && grep -q "SUCCESS: 5 rules found" <<<"$out"
tap_ok $? "promtool check rules: the 5 rules are valid"
out=$(cd "$HSMKEYS_ROOT/tests/prometheus" && promtool test rules hsmkeys.rules.test.yml 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
tap_ok $rc "promtool test rules: each alert fires on its failure, none on a healthy fleet"
for a in HsmkeysTokenDown HsmkeysDerivationsFailing HsmkeysFleetTagDisagrees HsmkeysResumptionRatioLow HsmkeysKeyOlderThanEpoch; do
    grep -A3 "alertname: $a\$" "$HSMKEYS_ROOT/tests/prometheus/hsmkeys.rules.test.yml" | grep -q "exp_labels"
    tap_ok $? "the rules test expects $a to fire"
done
if [ -x "$HSMKEYS_BUILD/tests/metrics_test" ]; then
    "$HSMKEYS_BUILD/tests/metrics_test" render > "$LAB/metrics.txt"; rc=$?
    out=$(promtool check metrics < "$LAB/metrics.txt" 2>&1); rc2=$?
    echo "$out" | sed 's/^/# /'
    [ $rc = 0 ] && [ $rc2 = 0 ] && [ -z "$out" ] && grep -q '^hsmkeys_info{' "$LAB/metrics.txt"
    tap_ok $? "promtool check metrics accepts hsmkeys_metrics_render()'s text ($(grep -vc '^#' "$LAB/metrics.txt") samples)"
else
    tap_skip "promtool check metrics" "metrics_test not built (make tests)"
fi
tap_done
