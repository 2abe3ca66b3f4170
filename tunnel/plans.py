"""What a zone's Cloudflare plan lets its WAF rules do, and the check of a run against it.

Provisioning reads the zone's plan (``plan.legacy_id``: free, pro, business, enterprise) and
checks every rule it would leave in each phase before it writes anything, so a rule the plan
refuses stops the run with nothing changed, naming the plan, the rule, the limit and the fix.

The limits come from Cloudflare's documentation, each cited where it is written down:

* rate-limiting rules, "Availability" (the table of features by plan):
  https://developers.cloudflare.com/waf/rate-limiting-rules/#availability
* rate-limiting parameters (challenge actions need ``mitigation_timeout: 0`` below
  Enterprise; only Enterprise throttles with Block):
  https://developers.cloudflare.com/waf/rate-limiting-rules/parameters/#for-duration
* custom rules, "Availability" (number of rules, the Log action, regular expressions):
  https://developers.cloudflare.com/waf/custom-rules/#availability
* the Log action is Enterprise-only:
  https://developers.cloudflare.com/ruleset-engine/rules-language/actions/

Enterprise contracts differ (Advanced Rate Limiting, Bot Management); for an Enterprise zone
this checks only what holds for every Enterprise contract and leaves the rest to the API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunnel.waf import CUSTOM_PHASE, RATELIMIT_PHASE, SUPPORTED_SECONDS

__all__ = ["PLANS", "PlanLimits", "check_plan", "expression_fields", "limits_for", "uses_regex"]

logger = logging.getLogger(__name__)

RATE_LIMIT_DOC = "https://developers.cloudflare.com/waf/rate-limiting-rules/#availability"
DURATION_DOC = "https://developers.cloudflare.com/waf/rate-limiting-rules/parameters/#for-duration"
CUSTOM_RULES_DOC = "https://developers.cloudflare.com/waf/custom-rules/#availability"
ACTIONS_DOC = "https://developers.cloudflare.com/ruleset-engine/rules-language/actions/"

CHALLENGE_ACTIONS = frozenset({"challenge", "js_challenge", "managed_challenge"})

# The dashboard's field names in the availability table, as Rules language fields
# (https://developers.cloudflare.com/ruleset-engine/rules-language/fields/reference/).
_PATH = frozenset({"http.request.uri.path"})
_VERIFIED_BOT = frozenset({"cf.bot_management.verified_bot"})
_HOST_URI_QUERY = frozenset(
    {"http.host", "http.request.uri", "http.request.full_uri", "http.request.uri.query"}
)
_METHOD_IP_AGENT = frozenset({"http.request.method", "ip.src", "http.user_agent"})
#: Counting characteristics: "IP" and "IP with NAT support"; cf.colo.id is always there.
_IP = frozenset({"ip.src"})
_IP_NAT = frozenset({"cf.unique_visitor_id"})


@dataclass(frozen=True, kw_only=True)
class PlanLimits:
    """One plan's column of the availability tables."""

    label: str
    #: Custom rules in the zone's http_request_firewall_custom phase.
    custom_rules: int
    #: Whether custom rule expressions may use regular expressions (``matches``).
    custom_regex: bool
    #: Whether rules may use the Log action.
    log_action: bool
    #: Rate-limiting rules in the zone's http_ratelimit phase.
    ratelimit_rules: int
    #: Longest counting period and mitigation timeout, in seconds.
    max_period: int
    max_mitigation_timeout: int
    #: Fields a rate-limiting expression may use; None: any request field.
    ratelimit_fields: frozenset[str] | None
    #: Characteristics besides cf.colo.id; None: any.
    characteristics: frozenset[str] | None
    #: Whether a custom counting expression may be set.
    counting_expression: bool
    #: Enterprise: any timeout with any action, 0 (throttling) with Block too.
    any_timeout: bool = False

    @property
    def periods(self) -> tuple[int, ...]:
        """The periods this plan allows: the supported values (footnote 3) up to its maximum."""
        return tuple(s for s in SUPPORTED_SECONDS if s <= self.max_period)

    @property
    def mitigation_timeouts(self) -> tuple[int, ...]:
        """The non-zero mitigation timeouts this plan allows."""
        return tuple(s for s in SUPPORTED_SECONDS if s <= self.max_mitigation_timeout)


# The availability tables as the documents above print them: a row per limit (a PlanLimits
# field), a column per plan. Each plan's rate-limiting fields are the previous plan's and more.
# fmt: off
_PLAN_IDS =               ("free",  "pro",  "business",     "enterprise")
_LABEL =                  ("Free",  "Pro",  "Business",     "Enterprise")
_CUSTOM_RULES =           (5,       20,     100,            1000)
_CUSTOM_REGEX =           (False,   False,  True,           True)
_LOG_ACTION =             (False,   False,  False,          True)
_RATELIMIT_RULES =        (1,       2,      5,              100)
_MAX_PERIOD =             (10,      60,     600,            65535)
_MAX_MITIGATION_TIMEOUT = (10,      3600,   86400,          86400)
_RATELIMIT_FIELDS = (
    _PATH | _VERIFIED_BOT,
    _PATH | _VERIFIED_BOT | _HOST_URI_QUERY,
    _PATH | _VERIFIED_BOT | _HOST_URI_QUERY | _METHOD_IP_AGENT,
    None,
)
_CHARACTERISTICS =        (_IP,     _IP,    _IP | _IP_NAT,  None)
_COUNTING_EXPRESSION =    (False,   False,  True,           True)
_ANY_TIMEOUT =            (False,   False,  False,          True)
# fmt: on

PLANS: Mapping[str, PlanLimits] = {
    plan: PlanLimits(
        label=_LABEL[column],
        custom_rules=_CUSTOM_RULES[column],
        custom_regex=_CUSTOM_REGEX[column],
        log_action=_LOG_ACTION[column],
        ratelimit_rules=_RATELIMIT_RULES[column],
        max_period=_MAX_PERIOD[column],
        max_mitigation_timeout=_MAX_MITIGATION_TIMEOUT[column],
        ratelimit_fields=_RATELIMIT_FIELDS[column],
        characteristics=_CHARACTERISTICS[column],
        counting_expression=_COUNTING_EXPRESSION[column],
        any_timeout=_ANY_TIMEOUT[column],
    )
    for column, plan in enumerate(_PLAN_IDS)
}


def limits_for(legacy_id: str | None) -> PlanLimits:
    """The limits of a zone's plan; an unknown plan is held to the Free plan's."""
    limits = PLANS.get((legacy_id or "").lower())
    if limits is None:
        logger.warning("unknown zone plan %r: checking the rules against the Free plan", legacy_id)
        return PLANS["free"]
    return limits


_STRING = re.compile(r'r(#*)"(?:.|\n)*?"\1|"(?:[^"\\]|\\.)*"')
_FIELD = re.compile(r"(?<![\w.$])[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_REGEX_OPERATOR = re.compile(r"(?<![\w.])matches(?![\w.])|~")


def _code(expression: str) -> str:
    """The expression with its string literals blanked (field names inside them do not count)."""
    return _STRING.sub('""', expression)


def expression_fields(expression: str) -> set[str]:
    """The Rules language fields an expression names (``http.request.uri.path``, ``ip.src``)."""
    return set(_FIELD.findall(_code(expression)))


def uses_regex(expression: str) -> bool:
    """Whether an expression uses the ``matches`` (``~``) operator."""
    return bool(_REGEX_OPERATOR.search(_code(expression)))


def check_plan(
    limits: PlanLimits,
    phases: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    ref_prefix: str,
) -> list[str]:
    """Every way the rules a run would leave in each phase break the plan (empty: all fit).

    ``phases`` maps a phase to the rules it would hold after the run, in API form: the
    spec's own (their ref starts with ``ref_prefix``) and the others already there. Others
    count towards the number of rules; only the spec's own are checked field by field.
    """
    refusals: list[str] = []
    custom = list(phases.get(CUSTOM_PHASE, ()))
    limited = list(phases.get(RATELIMIT_PHASE, ()))
    refusals += _count(limits, "custom", custom, limits.custom_rules, ref_prefix)
    refusals += _count(limits, "rate-limiting", limited, limits.ratelimit_rules, ref_prefix)
    for rule in _owned(custom, ref_prefix):
        refusals += _custom_rule(limits, rule, ref_prefix)
    for rule in _owned(limited, ref_prefix):
        refusals += _rate_limit_rule(limits, rule, ref_prefix)
    return refusals


def _owned(rules: Iterable[Mapping[str, Any]], prefix: str) -> list[Mapping[str, Any]]:
    return [rule for rule in rules if str(rule.get("ref", "")).startswith(prefix)]


def _count(
    limits: PlanLimits, kind: str, rules: list[Mapping[str, Any]], limit: int, prefix: str
) -> list[str]:
    if len(rules) <= limit:
        return []
    ours = len(_owned(rules, prefix))
    doc = CUSTOM_RULES_DOC if kind == "custom" else RATE_LIMIT_DOC
    section = "custom_rules" if kind == "custom" else "rate_limits"
    return [
        f"the {limits.label} plan allows {limit} {kind} rule(s) in a zone, and this run would "
        f"leave {len(rules)} ({ours} from tunnel.yaml, {len(rules) - ours} already in the zone); "
        f"remove rules from waf.{section} in tunnel.yaml or from the zone, or upgrade the plan "
        f"({doc})"
    ]


def _rule_name(rule: Mapping[str, Any], prefix: str) -> str:
    return str(rule.get("ref", "")).removeprefix(prefix)


def _custom_rule(limits: PlanLimits, rule: Mapping[str, Any], prefix: str) -> list[str]:
    name = _rule_name(rule, prefix)
    out = []
    if rule.get("action") == "log" and not limits.log_action:
        out.append(
            f"the {limits.label} plan refuses custom rule {name!r}: the Log action is "
            f"Enterprise-only; use block or managed_challenge in tunnel.yaml ({ACTIONS_DOC})"
        )
    if uses_regex(str(rule.get("expression", ""))) and not limits.custom_regex:
        out.append(
            f"the {limits.label} plan refuses custom rule {name!r}: regular expressions "
            "(matches, ~) need Business or Enterprise; use starts_with(), contains, eq or "
            f"wildcard in its expression in tunnel.yaml ({CUSTOM_RULES_DOC})"
        )
    return out


def _rate_limit_rule(limits: PlanLimits, rule: Mapping[str, Any], prefix: str) -> list[str]:
    name = _rule_name(rule, prefix)
    where = f"the {limits.label} plan refuses rate-limiting rule {name!r}"
    ratelimit: Mapping[str, Any] = rule.get("ratelimit") or {}
    action = str(rule.get("action", ""))
    out = []
    if action == "log" and not limits.log_action:
        out.append(
            f"{where}: the Log action is Enterprise-only; use block or managed_challenge in "
            f"tunnel.yaml ({ACTIONS_DOC})"
        )
    period = int(ratelimit.get("period") or 0)
    if period not in limits.periods:
        out.append(
            f"{where}: period {period} s is not one it allows ({_seconds(limits.periods)}); "
            f"set period: {_nearest(period, limits.periods)} in tunnel.yaml, or upgrade the "
            f"plan ({RATE_LIMIT_DOC})"
        )
    out += _timeout(limits, where, action, int(ratelimit.get("mitigation_timeout") or 0))
    out += _characteristics(limits, where, list(ratelimit.get("characteristics") or ()))
    if limits.ratelimit_fields is not None:
        extra = sorted(expression_fields(str(rule.get("expression", ""))))
        refused = [field for field in extra if field not in limits.ratelimit_fields]
        if refused:
            out.append(
                f"{where}: its expression uses {', '.join(refused)}, and the plan allows only "
                f"{', '.join(sorted(limits.ratelimit_fields))} in a rate-limiting expression; "
                f"rewrite the expression in tunnel.yaml, or upgrade the plan ({RATE_LIMIT_DOC})"
            )
    if ratelimit.get("counting_expression") and not limits.counting_expression:
        out.append(
            f"{where}: a custom counting_expression needs Business or Enterprise; remove it "
            f"from tunnel.yaml ({RATE_LIMIT_DOC})"
        )
    return out


def _timeout(limits: PlanLimits, where: str, action: str, timeout: int) -> list[str]:
    if limits.any_timeout:
        if 0 <= timeout <= limits.max_mitigation_timeout:
            return []
        return [
            f"{where}: mitigation_timeout {timeout} s is beyond "
            f"{limits.max_mitigation_timeout} s; lower it in tunnel.yaml ({RATE_LIMIT_DOC})"
        ]
    if action in CHALLENGE_ACTIONS:
        if timeout == 0:
            return []
        return [
            f"{where}: with the {action} action the plan needs mitigation_timeout: 0 (it "
            f"throttles: a visitor who passes the challenge starts counting again), not "
            f"{timeout} s; set mitigation_timeout: 0 in tunnel.yaml ({DURATION_DOC})"
        ]
    if timeout in limits.mitigation_timeouts:
        return []
    if timeout == 0:
        return [
            f"{where}: mitigation_timeout 0 (throttling) with the {action} action is "
            f"Enterprise-only; set mitigation_timeout: {limits.mitigation_timeouts[0]} in "
            f"tunnel.yaml ({DURATION_DOC})"
        ]
    return [
        f"{where}: mitigation_timeout {timeout} s is not one it allows "
        f"({_seconds(limits.mitigation_timeouts)}); set mitigation_timeout: "
        f"{_nearest(timeout, limits.mitigation_timeouts)} in tunnel.yaml, or upgrade the plan "
        f"({RATE_LIMIT_DOC})"
    ]


def _characteristics(limits: PlanLimits, where: str, characteristics: list[str]) -> list[str]:
    counted = [c for c in characteristics if c != "cf.colo.id"]
    if limits.characteristics is None or (
        counted and all(c in limits.characteristics for c in counted)
    ):
        return []
    allowed = ", ".join(["cf.colo.id", *sorted(limits.characteristics)])
    return [
        f"{where}: it counts by {', '.join(characteristics) or 'nothing'}, and the plan counts "
        f"only by {allowed} (cf.colo.id and one IP characteristic); set characteristics: "
        f"[cf.colo.id, ip.src] in tunnel.yaml ({RATE_LIMIT_DOC})"
    ]


def _seconds(values: Sequence[int]) -> str:
    return ", ".join(f"{v} s" for v in values)


def _nearest(value: int, allowed: Sequence[int]) -> int:
    return min(allowed, key=lambda candidate: (abs(candidate - value), candidate))
