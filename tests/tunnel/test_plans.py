"""The plan check: each plan's limits, the shipped file on Free, and agreement with the API."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import cloudflare
import pytest
import yaml

from tests.tunnel.api_server import ZONE_ID, CloudflareApi
from tests.tunnel.conftest import SPEC_FILE
from tunnel.cfapi import make_client
from tunnel.plans import PLANS, check_plan, expression_fields, limits_for, uses_regex
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec, parse_spec
from tunnel.waf import CUSTOM_PHASE, RATELIMIT_PHASE, rule_to_api

PREFIX = "zeroport_"


def limit_rule(
    *,
    action: str = "block",
    expression: str = 'starts_with(http.request.uri.path, "/")',
    characteristics: tuple[str, ...] = ("cf.colo.id", "ip.src"),
    period: int = 10,
    timeout: int = 10,
    counting: str | None = None,
    ref: str = "zeroport_r",
) -> dict[str, Any]:
    ratelimit: dict[str, Any] = {
        "characteristics": list(characteristics),
        "period": period,
        "requests_per_period": 50,
        "mitigation_timeout": timeout,
    }
    if counting is not None:
        ratelimit["counting_expression"] = counting
    return {
        "ref": ref,
        "description": "d",
        "expression": expression,
        "action": action,
        "ratelimit": ratelimit,
    }


def custom_rule(expression: str = "ip.src eq 192.0.2.1", action: str = "block") -> dict[str, Any]:
    return {"ref": "zeroport_c", "description": "d", "expression": expression, "action": action}


def refusals(
    plan: str,
    *,
    custom: list[dict[str, Any]] | None = None,
    limits: list[dict[str, Any]] | None = None,
) -> list[str]:
    phases = {CUSTOM_PHASE: custom or [], RATELIMIT_PHASE: limits or []}
    return check_plan(PLANS[plan], phases, ref_prefix=PREFIX)


def commented_example(plan: str) -> dict[str, Any]:
    """The commented rule under "Pro:" or "Business:" at the end of tunnel.yaml."""
    lines = SPEC_FILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"# {plan}:"))
    block = []
    for line in lines[start + 1 :]:
        if line.startswith("#    "):
            block.append(line[5:])
        elif block:
            break
    (rule,) = yaml.safe_load("\n".join(block))
    return dict(rule)


def test_the_shipped_file_fits_every_plan(spec: TunnelSpec) -> None:
    phases = {
        CUSTOM_PHASE: [rule_to_api(r, ref_prefix=PREFIX) for r in spec.custom_rules],
        RATELIMIT_PHASE: [rule_to_api(r, ref_prefix=PREFIX) for r in spec.rate_limits],
    }
    for limits in PLANS.values():
        assert check_plan(limits, phases, ref_prefix=PREFIX) == [], limits.label


@pytest.mark.parametrize(("plan", "refused_by"), [("Pro", "free"), ("Business", "pro")])
def test_the_commented_examples_fit_their_plan_and_not_the_one_below(
    spec: TunnelSpec, plan: str, refused_by: str
) -> None:
    data = yaml.safe_load(SPEC_FILE.read_text())
    data["waf"]["rate_limits"].append(commented_example(plan))
    extended = parse_spec(data)
    phases = {
        CUSTOM_PHASE: [rule_to_api(r, ref_prefix=PREFIX) for r in extended.custom_rules],
        RATELIMIT_PHASE: [rule_to_api(r, ref_prefix=PREFIX) for r in extended.rate_limits],
    }

    assert check_plan(PLANS[plan.lower()], phases, ref_prefix=PREFIX) == []
    assert check_plan(PLANS[refused_by], phases, ref_prefix=PREFIX) != []


def test_free_allows_ten_seconds_only() -> None:
    assert refusals("free", limits=[limit_rule()]) == []
    (refusal,) = refusals("free", limits=[limit_rule(period=60)])
    assert refusal.startswith(
        "the Free plan refuses rate-limiting rule 'r': period 60 s is not one it allows (10 s); "
        "set period: 10 in tunnel.yaml, or upgrade the plan"
    )
    assert refusals("pro", limits=[limit_rule(period=60, timeout=3600)]) == []
    assert "period 120 s" in refusals("pro", limits=[limit_rule(period=120)])[0]
    assert refusals("business", limits=[limit_rule(period=600, timeout=86400)]) == []


def test_challenge_actions_need_a_zero_timeout_below_enterprise() -> None:
    for plan in ("free", "pro", "business"):
        assert refusals(plan, limits=[limit_rule(action="managed_challenge", timeout=0)]) == []
        (refusal,) = refusals(plan, limits=[limit_rule(action="js_challenge", timeout=10)])
        assert "needs mitigation_timeout: 0" in refusal
    assert refusals("enterprise", limits=[limit_rule(action="challenge", timeout=600)]) == []


def test_block_cannot_throttle_below_enterprise() -> None:
    (refusal,) = refusals("free", limits=[limit_rule(timeout=0)])
    assert "mitigation_timeout 0 (throttling) with the block action is Enterprise-only" in refusal
    assert refusals("enterprise", limits=[limit_rule(timeout=0)]) == []


def test_rule_counts_include_rules_already_in_the_zone() -> None:
    theirs = limit_rule(ref="theirs")
    (refusal,) = refusals("free", limits=[theirs, limit_rule()])
    assert "allows 1 rate-limiting rule(s)" in refusal
    assert "(1 from tunnel.yaml, 1 already in the zone)" in refusal
    assert refusals("pro", limits=[theirs, limit_rule()]) == []
    six = [custom_rule() | {"ref": f"zeroport_{n}"} for n in range(6)]
    assert "allows 5 custom rule(s)" in refusals("free", custom=six)[0]


def test_fields_characteristics_counting_log_and_regex() -> None:
    host = limit_rule(expression='http.host eq "a.example.com"')
    assert "uses http.host" in refusals("free", limits=[host])[0]
    assert refusals("pro", limits=[host]) == []
    nat = limit_rule(characteristics=("cf.colo.id", "cf.unique_visitor_id"))
    assert "counts by cf.colo.id, cf.unique_visitor_id" in refusals("pro", limits=[nat])[0]
    assert refusals("business", limits=[nat]) == []
    counting = limit_rule(counting="http.response.code eq 401")
    assert "counting_expression needs Business" in refusals("pro", limits=[counting])[0]
    assert (
        "Log action is Enterprise-only"
        in refusals("business", custom=[custom_rule(action="log")])[0]
    )
    regex = custom_rule('http.request.uri.path matches "^/a"')
    assert "regular expressions" in refusals("pro", custom=[regex])[0]
    assert refusals("business", custom=[regex]) == []


def test_rules_not_ours_are_counted_but_not_judged() -> None:
    theirs = limit_rule(ref="theirs", period=3600, timeout=86400)
    assert refusals("pro", limits=[theirs]) == []


def test_expression_fields_ignore_strings_functions_and_addresses() -> None:
    expression = (
        'lower(http.request.uri.path) eq "/x.y.z" and not ip.src in {192.0.2.0/24} '
        'and any(http.request.headers["x-a.b"][*] == r#"q.r"#) and $my.list'
    )
    assert expression_fields(expression) == {
        "http.request.uri.path",
        "ip.src",
        "http.request.headers",
    }
    assert uses_regex('http.host matches "a"')
    assert not uses_regex('http.host eq "matches ~"')


def test_an_unknown_plan_is_held_to_free() -> None:
    assert limits_for("partner-special") is PLANS["free"]
    assert limits_for("BUSINESS") is PLANS["business"]


SAMPLES = [
    ("shipped", limit_rule()),
    ("period-15", limit_rule(period=15)),
    ("period-60", limit_rule(period=60, timeout=60)),
    ("period-600", limit_rule(period=600, timeout=600)),
    ("period-3600", limit_rule(period=3600, timeout=3600)),
    ("timeout-86400", limit_rule(timeout=86400)),
    ("timeout-0-block", limit_rule(timeout=0)),
    ("challenge-0", limit_rule(action="managed_challenge", timeout=0)),
    ("challenge-10", limit_rule(action="managed_challenge", timeout=10)),
    ("host", limit_rule(expression='http.host eq "a.example.com"')),
    ("method", limit_rule(expression='http.request.method eq "POST"')),
    ("user-agent", limit_rule(expression='http.user_agent contains "curl"')),
    ("header", limit_rule(expression='http.request.headers["x"][0] eq "1"')),
    ("nat", limit_rule(characteristics=("cf.colo.id", "cf.unique_visitor_id"))),
    ("asn", limit_rule(characteristics=("cf.colo.id", "ip.src.asnum"))),
    ("counting", limit_rule(counting="http.response.code eq 401")),
    ("log", limit_rule(action="log")),
]


@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize(("name", "rule"), SAMPLES, ids=[name for name, _ in SAMPLES])
def test_the_checker_and_the_api_agree(
    api: CloudflareApi, plan: str, name: str, rule: dict[str, Any]
) -> None:
    # Two tables written apart from the same documentation: the checker's (tunnel/plans.py)
    # and the local API's (tests/tunnel/entitlements.py). A rule refused by one and taken by
    # the other would mean a run that writes and then fails, or a refusal for nothing.
    api.plan = plan
    checker_refuses = bool(refusals(plan, limits=[rule]))
    client = make_client(replace(CloudflareSettings.from_env(), max_retries=0))
    try:
        client.rulesets.phases.update("http_ratelimit", zone_id=ZONE_ID, rules=[cast(Any, rule)])
    except cloudflare.BadRequestError:
        api_refuses = True
    else:
        api_refuses = False
    assert checker_refuses == api_refuses, f"{plan}/{name}"


def test_the_api_refuses_the_old_shipped_rule_on_free_in_its_own_words(api: CloudflareApi) -> None:
    client = make_client(replace(CloudflareSettings.from_env(), max_retries=0))

    with pytest.raises(cloudflare.BadRequestError) as caught:
        client.rulesets.phases.update(
            "http_ratelimit", zone_id=ZONE_ID, rules=[cast(Any, limit_rule(period=60, timeout=600))]
        )
    body: Any = caught.value.body
    messages = [e["message"] for e in body["errors"]]
    assert body["success"] is False
    assert all(e["code"] == 20217 for e in body["errors"])
    assert "not entitled to use the period 60, can only use a period among [10]" in messages[0]
    assert messages[1] == "not entitled to use a mitigation timeout different from 10"
    assert api.phases == {}
