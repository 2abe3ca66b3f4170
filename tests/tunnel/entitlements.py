"""The local API server's own copy of what each plan may put in a zone's WAF phases.

Written straight from Cloudflare's availability tables, in their own words, and on purpose
apart from the checker's table in ``tunnel/plans.py``: the tests compare the two, which checks
something only while neither is derived from the other.

* rate limiting: https://developers.cloudflare.com/waf/rate-limiting-rules/#availability
  (rows: available fields in rule expression, counting characteristics, custom counting
  expression, counting periods, mitigation timeout periods, number of rules; footnote 3 lists
  the supported values), and .../parameters/#for-duration (challenge actions take
  ``mitigation_timeout: 0`` below Enterprise; only Enterprise throttles with Block);
* custom rules: https://developers.cloudflare.com/waf/custom-rules/#availability (number of
  rules, supported actions "All except Log", regex support);
* the Log action: https://developers.cloudflare.com/ruleset-engine/rules-language/actions/.

The refusals read like the API's (HTTP 400, code 20217, ``'<value>' is not a valid value for
<field> because ...``, with a JSON pointer): wording seen in
github.com/ma-r-s/crossplay/pull/106 ("not entitled to use the period 60, can only use a period
among [10]", "not entitled to use a mitigation timeout different from 10"),
cloudflare/cloudflare-docs#23641 ("the use of field http.response.code is not allowed") and
userbradley/documentation.breadnet.co.uk#609 (code 20217, ``source.pointer``).
"""

from __future__ import annotations

from typing import Any

CUSTOM = "http_request_firewall_custom"
RATELIMIT = "http_ratelimit"

#: Dashboard names in the tables, as Rules language fields.
DASHBOARD_FIELDS = {
    "Path": ["http.request.uri.path"],
    "Verified Bot": ["cf.bot_management.verified_bot"],
    "Host": ["http.host"],
    "URI": ["http.request.uri"],
    "Full URI": ["http.request.full_uri"],
    "Query": ["http.request.uri.query"],
    "Method": ["http.request.method"],
    "Source IP": ["ip.src"],
    "User Agent": ["http.user_agent"],
}
DASHBOARD_CHARACTERISTICS = {"IP": "ip.src", "IP with NAT support": "cf.unique_visitor_id"}

_UP_TO_1_MIN = [10, 15, 20, 30, 40, 45, 60]
_UP_TO_10_MIN = [*_UP_TO_1_MIN, 90, 120, 180, 240, 300, 480, 600]
_UP_TO_1_H = [*_UP_TO_10_MIN, 900, 1200, 1800, 2400, 3600]
_UP_TO_65535 = [*_UP_TO_1_H, 65535]
_UP_TO_1_DAY = [*_UP_TO_65535, 86400]

#: Columns of the rate-limiting table. Enterprise: "Enterprise with app security"; fields and
#: characteristics None where the contract decides (general request fields and more).
RATE_LIMITING: dict[str, dict[str, Any]] = {
    "free": {
        "rules": 1,
        "fields": "Path, Verified Bot",
        "characteristics": "IP",
        "counting_expression": False,
        "periods": [10],
        "timeouts": [10],
    },
    "pro": {
        "rules": 2,
        "fields": "Host, URI, Path, Full URI, Query, Verified Bot",
        "characteristics": "IP",
        "counting_expression": False,
        "periods": _UP_TO_1_MIN,
        "timeouts": _UP_TO_1_H,
    },
    "business": {
        "rules": 5,
        "fields": "Host, URI, Path, Full URI, Query, Method, Source IP, User Agent, Verified Bot",
        "characteristics": "IP, IP with NAT support",
        "counting_expression": True,
        "periods": _UP_TO_10_MIN,
        "timeouts": _UP_TO_1_DAY,
    },
    "enterprise": {
        "rules": 100,
        "fields": None,
        "characteristics": None,
        "counting_expression": True,
        "periods": _UP_TO_65535,
        "timeouts": None,  # footnote 4: a custom mitigation timeout via API
    },
}
#: Columns of the custom rules table.
CUSTOM_RULES: dict[str, dict[str, Any]] = {
    "free": {"rules": 5, "log": False, "regex": False},
    "pro": {"rules": 20, "log": False, "regex": False},
    "business": {"rules": 100, "log": False, "regex": True},
    "enterprise": {"rules": 1000, "log": True, "regex": True},
}
_CHALLENGES = ("challenge", "js_challenge", "managed_challenge")


def ruleset_errors(plan: str, phase: str, rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(JSON pointer, message) for every part of a phase PUT the plan does not allow."""
    if phase == CUSTOM:
        return _custom(CUSTOM_RULES[plan], rules)
    if phase == RATELIMIT:
        return _rate_limiting(plan, RATE_LIMITING[plan], rules)
    return []


def _too_many(phase: str, limit: int, count: int) -> tuple[str, str]:
    # The exact words of this refusal were not found published; these are the server's own.
    return ("/rules", f"exceeded the maximum number of rules ({limit}) in phase {phase}: {count}")


def _custom(column: dict[str, Any], rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    out = []
    if len(rules) > column["rules"]:
        out.append(_too_many(CUSTOM, column["rules"], len(rules)))
    for index, rule in enumerate(rules):
        if rule.get("action") == "log" and not column["log"]:
            out.append(
                (
                    f"/rules/{index}/action",
                    "'log' is not a valid value for action because "
                    "not entitled to use the log action",
                )
            )
        expression = str(rule.get("expression", ""))
        operators = [t for t in _tokens(expression) if t in ("matches", "~")]
        if operators and not column["regex"]:
            out.append(
                (
                    f"/rules/{index}/expression",
                    f"'{expression}' is not a valid value for "
                    f"expression because not entitled to use the {operators[0]} operator",
                )
            )
    return out


def _rate_limiting(
    plan: str, column: dict[str, Any], rules: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    out = []
    if len(rules) > column["rules"]:
        out.append(_too_many(RATELIMIT, column["rules"], len(rules)))
    allowed_fields = None
    if column["fields"] is not None:
        allowed_fields = {
            f for name in column["fields"].split(", ") for f in DASHBOARD_FIELDS[name]
        }
    allowed_characteristics = None
    if column["characteristics"] is not None:
        allowed_characteristics = {
            DASHBOARD_CHARACTERISTICS[name] for name in column["characteristics"].split(", ")
        }
    for index, rule in enumerate(rules):
        at = f"/rules/{index}"
        limit = rule.get("ratelimit") or {}
        action = rule.get("action")
        if action == "log" and plan != "enterprise":
            out.append(
                (
                    f"{at}/action",
                    "'log' is not a valid value for action because not "
                    "entitled to use the log action",
                )
            )
        period = limit.get("period")
        if period not in column["periods"]:
            among = ", ".join(map(str, column["periods"]))
            out.append(
                (
                    f"{at}/ratelimit/period",
                    f"'{period}' is not a valid value for period "
                    f"because not entitled to use the period {period}, can only use a "
                    f"period among [{among}]",
                )
            )
        out += _timeout(plan, column, at, action, limit.get("mitigation_timeout", 0))
        characteristics = list(limit.get("characteristics") or [])
        if "cf.colo.id" not in characteristics:
            out.append(
                (f"{at}/ratelimit/characteristics", "cf.colo.id must be one of the characteristics")
            )
        if allowed_characteristics is not None:
            counted = [c for c in characteristics if c != "cf.colo.id"]
            refused = [c for c in counted if c not in allowed_characteristics]
            if refused or not counted:
                out.append(
                    (
                        f"{at}/ratelimit/characteristics",
                        f"not entitled to use the characteristics {characteristics}",
                    )
                )
        if allowed_fields is not None:
            for token in _tokens(str(rule.get("expression", ""))):
                if "." in token and token[0].isalpha() and token not in allowed_fields:
                    out.append(
                        (
                            f"{at}/expression",
                            f"'{rule.get('expression')}' is not a valid "
                            f"value for expression because the use of field {token} is "
                            "not allowed",
                        )
                    )
        if limit.get("counting_expression") and not column["counting_expression"]:
            out.append(
                (
                    f"{at}/ratelimit/counting_expression",
                    "not entitled to use a custom counting expression",
                )
            )
    return out


def _timeout(
    plan: str, column: dict[str, Any], at: str, action: Any, timeout: int
) -> list[tuple[str, str]]:
    pointer = f"{at}/ratelimit/mitigation_timeout"
    if plan == "enterprise":
        return [] if 0 <= timeout <= 86400 else [(pointer, "mitigation timeout out of range")]
    if action in _CHALLENGES:
        if timeout == 0:
            return []
        return [
            (
                pointer,
                "not entitled to use a mitigation timeout different from 0 with a challenge action",
            )
        ]
    if timeout in column["timeouts"]:
        return []
    if len(column["timeouts"]) == 1:
        return [
            (
                pointer,
                f"not entitled to use a mitigation timeout different from {column['timeouts'][0]}",
            )
        ]
    among = ", ".join(map(str, column["timeouts"]))
    return [
        (
            pointer,
            f"not entitled to use the mitigation timeout {timeout}, can only use a "
            f"mitigation timeout among [{among}]",
        )
    ]


def _tokens(expression: str) -> list[str]:
    """Words, dotted names and operators of an expression, string literals skipped."""
    out: list[str] = []
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch == '"':
            i += 1
            while i < n and expression[i] != '"':
                i += 2 if expression[i] == "\\" else 1
            i += 1
        elif ch == "r" and i + 1 < n and expression[i + 1] in '"#':
            hashes = 0
            i += 1
            while i < n and expression[i] == "#":
                hashes, i = hashes + 1, i + 1
            closing = '"' + "#" * hashes
            end = expression.find(closing, i + 1)
            i = n if end < 0 else end + len(closing)
        elif ch == "~":
            out.append("~")
            i += 1
        elif ch.isalnum() or ch in "_$":
            start = i
            while i < n and (expression[i].isalnum() or expression[i] in "_.$"):
                i += 1
            word = expression[start:i]
            if not word[0].isdigit() and not word.startswith("$"):
                out.append(word)
        else:
            i += 1
    return out
