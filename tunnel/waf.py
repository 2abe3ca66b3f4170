"""WAF custom rules and rate-limiting rules: the spec's rules, a static check, and the merge.

A phase entry point ruleset (``PUT /zones/{zone_id}/rulesets/phases/{phase}/entrypoint``)
replaces every rule of the phase, so the rules this project owns are merged into what is
there: a rule is *owned* when its ``ref`` starts with the spec's prefix (``zeroport_`` by
default); every other rule is kept as it is, in its place. Owned rules form one block, in
spec order, where the first owned rule was (or at the end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CUSTOM_PHASE",
    "RATELIMIT_PHASE",
    "SUPPORTED_SECONDS",
    "Finding",
    "FirewallRule",
    "Merge",
    "RateLimit",
    "check_rules",
    "merge_rules",
    "rule_to_api",
]

CUSTOM_PHASE = "http_request_firewall_custom"
RATELIMIT_PHASE = "http_ratelimit"
PHASES = (CUSTOM_PHASE, RATELIMIT_PHASE)
#: Actions each phase accepts.
ACTIONS = {
    CUSTOM_PHASE: ("block", "challenge", "js_challenge", "managed_challenge", "log", "skip"),
    RATELIMIT_PHASE: ("block", "challenge", "js_challenge", "managed_challenge", "log"),
}
#: Every period and mitigation timeout (seconds) the API takes at all, whatever the plan: the
#: footnote of https://developers.cloudflare.com/waf/rate-limiting-rules/#availability. What a
#: zone's plan allows of them is :mod:`tunnel.plans`'s business.
SUPPORTED_SECONDS = (
    *(10, 15, 20, 30, 40, 45, 60, 90, 120, 180, 240, 300, 480, 600),
    *(900, 1200, 1800, 2400, 3600, 65535, 86400),
)
PERIODS = tuple(s for s in SUPPORTED_SECONDS if s <= 65535)
#: 0 throttles instead of holding the action for a time (challenge actions below Enterprise).
MITIGATION_TIMEOUTS = (0, *SUPPORTED_SECONDS)
#: Rule fields the PUT accepts; read-only ones (version, last_updated, ...) are not sent back.
WRITABLE_FIELDS = (
    "id",
    "ref",
    "description",
    "expression",
    "action",
    "action_parameters",
    "enabled",
    "logging",
    "ratelimit",
    "exposed_credential_check",
)
#: Fields compared to decide whether an owned rule needs an update.
_COMPARED_FIELDS = (
    "description",
    "expression",
    "action",
    "action_parameters",
    "enabled",
    "ratelimit",
)


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """``ratelimit``: how requests are counted and for how long the action holds."""

    characteristics: tuple[str, ...] = ("cf.colo.id", "ip.src")
    #: 10 s: the one period every plan allows.
    period: int = 10
    requests_per_period: int = 0
    mitigation_timeout: int = 0
    counting_expression: str | None = None
    requests_to_origin: bool | None = None


@dataclass(frozen=True, kw_only=True)
class FirewallRule:
    """One WAF custom rule, or a rate-limiting rule when ``ratelimit`` is set."""

    id: str
    description: str
    expression: str
    action: str
    enabled: bool = True
    action_parameters: Mapping[str, Any] | None = None
    ratelimit: RateLimit | None = None

    @property
    def phase(self) -> str:
        """The phase whose entry point ruleset holds this rule."""
        return RATELIMIT_PHASE if self.ratelimit is not None else CUSTOM_PHASE


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One static check result, for the security report."""

    id: str
    ok: bool
    message: str


def check_rules(rules: Sequence[FirewallRule], *, ref_prefix: str = "zeroport_") -> list[Finding]:
    """Check WAF and rate-limit rules without the API: one Finding per rule and check."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for rule in rules:
        base = f"waf.{rule.phase}.{rule.id}"

        def add(check: str, ok: bool, message: str, base: str = base) -> None:
            findings.append(Finding(id=f"{base}.{check}", ok=ok, message=message))

        add(
            "id",
            bool(rule.id) and rule.id not in seen and rule.id.replace("-", "_").isidentifier(),
            f"rule id {rule.id!r} is unique and made of letters, digits, '-' and '_' "
            f"(its ref is {ref_prefix}{rule.id})",
        )
        seen.add(rule.id)
        add(
            "description",
            bool(rule.description.strip()),
            "has a description" if rule.description.strip() else "needs a description",
        )
        add(
            "expression",
            bool(rule.expression.strip()),
            "has an expression" if rule.expression.strip() else "needs a non-empty expression",
        )
        allowed = ACTIONS[rule.phase]
        add(
            "action",
            rule.action in allowed,
            f"action {rule.action!r} is {'' if rule.action in allowed else 'not '}one of "
            f"{', '.join(allowed)} ({rule.phase})",
        )
        if rule.action == "skip":
            add(
                "action_parameters",
                bool(rule.action_parameters),
                "skip names what to skip in action_parameters"
                if rule.action_parameters
                else "skip needs action_parameters (e.g. {ruleset: current})",
            )
        if rule.ratelimit is not None:
            findings.extend(_ratelimit_findings(base, rule.ratelimit))
    return findings


def _ratelimit_findings(base: str, limit: RateLimit) -> list[Finding]:
    checks = [
        (
            "characteristics",
            "cf.colo.id" in limit.characteristics,
            f"characteristics {list(limit.characteristics)} include the mandatory cf.colo.id",
        ),
        (
            "period",
            limit.period in PERIODS,
            f"period {limit.period}s is one of {', '.join(map(str, PERIODS))}",
        ),
        (
            "requests_per_period",
            limit.requests_per_period >= 1,
            f"requests_per_period {limit.requests_per_period} is at least 1",
        ),
        (
            "mitigation_timeout",
            limit.mitigation_timeout in MITIGATION_TIMEOUTS,
            f"mitigation_timeout {limit.mitigation_timeout}s is one of "
            f"{', '.join(map(str, MITIGATION_TIMEOUTS))}",
        ),
    ]
    return [
        Finding(id=f"{base}.ratelimit.{name}", ok=ok, message=("" if ok else "not: ") + text)
        for name, ok, text in checks
    ]


def rule_to_api(rule: FirewallRule, *, ref_prefix: str) -> dict[str, Any]:
    """The rule as the Rulesets API takes it."""
    out: dict[str, Any] = {
        "ref": ref_prefix + rule.id,
        "description": rule.description,
        "expression": rule.expression,
        "action": rule.action,
        "enabled": rule.enabled,
    }
    if rule.action_parameters:
        out["action_parameters"] = dict(rule.action_parameters)
    if rule.ratelimit is not None:
        limit = rule.ratelimit
        ratelimit: dict[str, Any] = {
            "characteristics": list(limit.characteristics),
            "period": limit.period,
            "requests_per_period": limit.requests_per_period,
            "mitigation_timeout": limit.mitigation_timeout,
        }
        if limit.counting_expression is not None:
            ratelimit["counting_expression"] = limit.counting_expression
        if limit.requests_to_origin is not None:
            ratelimit["requests_to_origin"] = limit.requests_to_origin
        out["ratelimit"] = ratelimit
    return out


@dataclass(frozen=True, kw_only=True)
class Merge:
    """The rules to PUT for one phase, and what changes."""

    phase: str
    rules: list[dict[str, Any]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    kept: int = 0

    @property
    def changed(self) -> bool:
        """Whether the phase needs a PUT at all."""
        return bool(self.changes)


def merge_rules(
    phase: str,
    existing: Sequence[Mapping[str, Any]],
    desired: Sequence[Mapping[str, Any]],
    *,
    ref_prefix: str,
) -> Merge:
    """Merge the spec's rules (``desired``, API form) into a phase's ``existing`` rules."""

    def owned(rule: Mapping[str, Any]) -> bool:
        return str(rule.get("ref", "")).startswith(ref_prefix)

    current = {str(rule["ref"]): rule for rule in existing if owned(rule)}
    wanted_refs = [str(rule["ref"]) for rule in desired]
    changes: list[str] = []
    owned_block: list[dict[str, Any]] = []
    for rule in desired:
        ref = str(rule["ref"])
        old = current.get(ref)
        if old is None:
            changes.append(f"{phase}: add {ref} ({rule['action']}): {rule['description']}")
            owned_block.append(dict(rule))
            continue
        differing = [
            name
            for name in _COMPARED_FIELDS
            if _differs(old.get(name), rule.get(name), zero_omitted=name == "ratelimit")
        ]
        if differing:
            changes.append(f"{phase}: update {ref}: {', '.join(differing)}")
        # Sending the id keeps the rule's identity (and its analytics) across updates.
        owned_block.append({"id": old["id"], **rule} if "id" in old else dict(rule))
    for ref in current:
        if ref not in wanted_refs:
            changes.append(f"{phase}: remove {ref} (no longer in the spec)")
    existing_owned_order = [str(rule["ref"]) for rule in existing if owned(rule)]
    if not changes and existing_owned_order != wanted_refs:
        changes.append(f"{phase}: reorder {', '.join(wanted_refs)}")

    merged: list[dict[str, Any]] = []
    placed = False
    kept = 0
    for rule in existing:
        if owned(rule):
            if not placed:
                merged.extend(owned_block)
                placed = True
            continue
        merged.append({k: v for k, v in rule.items() if k in WRITABLE_FIELDS})
        kept += 1
    if not placed:
        merged.extend(owned_block)
    return Merge(phase=phase, rules=merged, changes=changes, kept=kept)


def _differs(current: object, wanted: object, *, zero_omitted: bool = False) -> bool:
    """Whether the API's value differs from the spec's; defaults the API adds do not count.

    With ``zero_omitted`` a field the API left out equals a zero the spec asks for: the API
    leaves zero-valued rate-limit fields such as ``mitigation_timeout: 0`` out of its answers
    (github.com/cloudflare/cf-terraforming/issues/724,
    github.com/cloudflare/terraform-provider-cloudflare/issues/2445), so without this every
    run would see a change and rewrite the rules.
    """
    if isinstance(current, Mapping) and isinstance(wanted, Mapping):
        return any(
            _differs(current.get(key), value, zero_omitted=zero_omitted)
            for key, value in wanted.items()
        )
    empty: tuple[object, ...] = (None, {}, [])
    if current in empty and wanted in empty:
        return False
    if zero_omitted and current is None and wanted in (0, ""):
        return False
    return current != wanted
