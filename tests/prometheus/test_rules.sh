#!/bin/bash
# test_rules.sh - the shipped alert rules (engine/prometheus/hsmkeys.rules.yml)
# pass `promtool check rules`, and `promtool test rules` fires each of them on
# the series of its failure and none on a healthy fleet
# (hsmkeys.rules.test.yml).  Threat: alert rules that never fire.
set -u
source "$HSMKEYS_ROOT/tests/lib/lab.sh"
if ! command -v promtool >/dev/null; then
    tap_skip "alert rules" "promtool not installed (make deps: prometheus)"; tap_done; exit
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
tap_done
