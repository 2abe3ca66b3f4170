"""WAF rules: the static check and the merge with rules already in the zone."""

from __future__ import annotations

from dataclasses import replace

from tests.tunnel.rules import BLOCK, CHALLENGE_BURST, LIMIT
from tunnel.waf import CUSTOM_PHASE, FirewallRule, RateLimit, check_rules, merge_rules, rule_to_api

#: A custom rule with placeholder text; each check below changes only what it checks.
PLACEHOLDER = FirewallRule(id="x", description="d", expression="e", action="block")


def failed(rules: list[FirewallRule]) -> list[str]:
    return [f.id for f in check_rules(rules) if not f.ok]


def test_good_rules_pass_every_check() -> None:
    findings = check_rules([BLOCK, LIMIT])
    assert findings
    assert all(f.ok for f in findings)
    assert {f.id for f in findings} >= {
        "waf.http_request_firewall_custom.block-env.description",
        "waf.http_ratelimit.api.ratelimit.period",
    }


def test_rule_without_description_or_expression() -> None:
    assert failed([replace(PLACEHOLDER, id="x", description=" ", expression="")]) == [
        "waf.http_request_firewall_custom.x.description",
        "waf.http_request_firewall_custom.x.expression",
    ]


def test_action_must_fit_the_phase() -> None:
    skip_limit = replace(
        PLACEHOLDER, id="s", action="skip", ratelimit=RateLimit(requests_per_period=1)
    )
    assert "waf.http_ratelimit.s.action" in failed([skip_limit])
    assert failed([replace(PLACEHOLDER, id="b", action="deny")]) == [
        "waf.http_request_firewall_custom.b.action"
    ]


def test_skip_needs_action_parameters() -> None:
    assert failed([replace(PLACEHOLDER, id="s", action="skip")]) == [
        "waf.http_request_firewall_custom.s.action_parameters"
    ]


def test_rate_limit_needs_its_fields() -> None:
    limit = RateLimit(
        characteristics=("ip.src",), period=25, requests_per_period=0, mitigation_timeout=5
    )
    assert failed([replace(PLACEHOLDER, id="r", ratelimit=limit)]) == [
        "waf.http_ratelimit.r.ratelimit.characteristics",
        "waf.http_ratelimit.r.ratelimit.period",
        "waf.http_ratelimit.r.ratelimit.requests_per_period",
        "waf.http_ratelimit.r.ratelimit.mitigation_timeout",
    ]


def test_duplicate_ids_are_flagged() -> None:
    assert failed([BLOCK, BLOCK]) == ["waf.http_request_firewall_custom.block-env.id"]


def test_merge_keeps_foreign_rules_and_places_owned_ones_together() -> None:
    existing = [
        {"id": "1", "ref": "theirs-a", "action": "log", "expression": "true", "version": "2"},
        {
            "id": "2",
            "ref": "zp_block-env",
            "action": "block",
            "expression": "old",
            "description": "Block /.env",
            "enabled": True,
        },
        {"id": "3", "ref": "theirs-b", "action": "block", "expression": "true"},
        {
            "id": "4",
            "ref": "zp_gone",
            "action": "block",
            "expression": "x",
            "description": "gone",
            "enabled": True,
        },
    ]
    desired = [rule_to_api(BLOCK, ref_prefix="zp_")]

    merge = merge_rules(CUSTOM_PHASE, existing, desired, ref_prefix="zp_")

    assert [r["ref"] for r in merge.rules] == ["theirs-a", "zp_block-env", "theirs-b"]
    assert merge.rules[0] == {"id": "1", "ref": "theirs-a", "action": "log", "expression": "true"}
    assert merge.rules[1]["id"] == "2"
    assert merge.changes == [
        f"{CUSTOM_PHASE}: update zp_block-env: expression",
        f"{CUSTOM_PHASE}: remove zp_gone (no longer in the spec)",
    ]
    assert merge.kept == 2


def test_merge_ignores_defaults_the_api_adds() -> None:
    desired = rule_to_api(LIMIT, ref_prefix="zp_")
    stored = {
        **desired,
        "id": "9",
        "version": "1",
        "ratelimit": {**desired["ratelimit"], "requests_to_origin": False},
    }
    merge = merge_rules("http_ratelimit", [stored], [desired], ref_prefix="zp_")
    assert not merge.changed


def test_zero_rate_limit_fields_the_api_leaves_out_are_not_a_change() -> None:
    desired = rule_to_api(CHALLENGE_BURST, ref_prefix="zp_")
    assert desired["ratelimit"]["mitigation_timeout"] == 0  # sent: challenges need it
    answered = {**desired, "id": "9", "version": "1"}
    answered["ratelimit"] = {k: v for k, v in desired["ratelimit"].items() if v}

    assert not merge_rules("http_ratelimit", [answered], [desired], ref_prefix="zp_").changed
    longer = {**answered, "ratelimit": {**answered["ratelimit"], "mitigation_timeout": 10}}
    merge = merge_rules("http_ratelimit", [longer], [desired], ref_prefix="zp_")
    assert merge.changes == ["http_ratelimit: update zp_burst: ratelimit"]
