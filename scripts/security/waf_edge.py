"""The WAF and rate-limit rules of ``tunnel.yaml`` proven where they act: Cloudflare's edge.

In tunnel mode ``doit security`` sends what the shipped rules must stop to
``https://<hostname>/`` and passes only when Cloudflare itself answers with a block:

* ``WAF-EDGE-RULES``: tunnel.yaml has rules at all; with none deployed there is nothing at the
  edge to prove, and the section fails instead of passing;
* ``WAF-EDGE-DOTFILE``: ``GET /.env``, which the custom rules block;
* ``WAF-EDGE-RATE-LIMIT``: a burst of ``GET /`` past the first rate-limiting rule's
  ``requests_per_period``, bounded in count and time, until one is refused.

A block is Cloudflare's when its status is 403 or 429, it carries ``cf-ray`` (every answer that
passes through Cloudflare does: developers.cloudflare.com/fundamentals/reference/cloudflare-ray-
id/) and it lacks the ``x-request-id`` that the service puts on every answer of its own, so an
origin's 403 (the Access check's, for one) never passes for the edge's. Cloudflare answers a
custom rule's Block with 403 by default (developers.cloudflare.com/waf/custom-rules/
create-dashboard/, "Configure a custom response for blocked requests") and a rate-limiting
rule's Block with 429 by default, its error 1015 page, "You are being rate limited"
(developers.cloudflare.com/waf/rate-limiting-rules/parameters/ and developers.cloudflare.com/
support/troubleshooting/http-status-codes/cloudflare-1xxx-errors/error-1015/).

Local mode has no edge: the rules are then checked statically only, and the report says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx

from scripts.core.checks import Check
from tunnel.spec import TunnelSpec

logger = logging.getLogger(__name__)

#: The burst never sends more than this many requests, nor runs longer than BURST_SECONDS.
MAX_BURST = 300
BURST_SECONDS = 60.0
#: Counters are per data center and may lag a few seconds
#: (developers.cloudflare.com/waf/rate-limiting-rules/request-rate/): send this many times the
#: limit before calling the rule absent.
BURST_FACTOR = 3
REQUEST_TIMEOUT = 5.0
DOTFILE_PATH = "/.env"
BLOCK_STATUSES = (403, 429)
NO_EDGE = (
    "WAF at the edge not tested: local mode has no edge (the rules above were checked "
    "statically); deploy with doit deploy mode=tunnel and run doit security again"
)


@dataclass(frozen=True, kw_only=True)
class EdgeAnswer:
    """What came back for one request."""

    status: int
    headers: dict[str, str]

    @property
    def is_edge_block(self) -> bool:
        """Cloudflare refused it: 403 or 429, with cf-ray and without the origin's request id."""
        return (
            self.status in BLOCK_STATUSES
            and "cf-ray" in self.headers
            and "x-request-id" not in self.headers
        )

    def describe(self) -> str:
        """``429, cf-ray 8f0c...-AMS`` or ``200 from the origin (x-request-id ...)``."""
        ray = self.headers.get("cf-ray")
        origin = self.headers.get("x-request-id")
        parts = [str(self.status)]
        if ray:
            parts.append(f"cf-ray {ray}")
        if origin:
            parts.append(f"from the origin (x-request-id {origin})")
        return ", ".join(parts)


def fetch(client: httpx.Client, url: str) -> EdgeAnswer | str:
    """GET ``url``: the answer, or why there was none."""
    try:
        response = client.get(url, timeout=REQUEST_TIMEOUT)
    except httpx.HTTPError as exc:
        return f"no answer from {url} ({type(exc).__name__}: {exc})"
    return EdgeAnswer(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
    )


def edge_checks(
    client: httpx.Client,
    spec: TunnelSpec,
    *,
    max_burst: int = MAX_BURST,
    burst_seconds: float = BURST_SECONDS,
) -> list[Check]:
    """The tunnel-mode WAF checks against ``https://<spec.hostname>``."""
    base = f"https://{spec.hostname}"
    rules = Check(
        id="WAF-EDGE-RULES",
        title="tunnel.yaml has WAF rules for the edge to enforce",
        ok=bool(spec.rules),
        evidence=f"{len(spec.custom_rules)} custom, {len(spec.rate_limits)} rate-limiting"
        if spec.rules
        else "no rules deployed: tunnel.yaml has none, so the edge blocks nothing; add "
        "rules under waf and run doit tunnel",
    )
    return [
        rules,
        _dotfile(client, base, spec),
        _burst(client, base, spec, max_burst, burst_seconds),
    ]


def _dotfile(client: httpx.Client, base: str, spec: TunnelSpec) -> Check:
    url = base + DOTFILE_PATH
    title = f"the edge blocks GET {DOTFILE_PATH} (403 with cf-ray)"
    if not spec.custom_rules:
        return Check(
            id="WAF-EDGE-DOTFILE",
            title=title,
            ok=False,
            evidence="tunnel.yaml has no custom rule to block it; add block-dotfiles back",
        )
    answer = fetch(client, url)
    if isinstance(answer, str):
        return Check(id="WAF-EDGE-DOTFILE", title=title, ok=False, evidence=answer)
    ok = answer.is_edge_block
    evidence = f"GET {url}: {answer.describe()}"
    if not ok:
        evidence += "; the custom rules are not deployed, or do not match: run doit tunnel"
    return Check(id="WAF-EDGE-DOTFILE", title=title, ok=ok, evidence=evidence)


def _burst(
    client: httpx.Client, base: str, spec: TunnelSpec, max_burst: int, burst_seconds: float
) -> Check:
    title = "the edge rate-limits a burst past the limit (429 or 403 with cf-ray)"
    limits = [rule for rule in spec.rate_limits if rule.ratelimit is not None]
    if not limits or limits[0].ratelimit is None:
        return Check(
            id="WAF-EDGE-RATE-LIMIT",
            title=title,
            ok=False,
            evidence="tunnel.yaml has no rate-limiting rule to prove; add one under "
            "waf.rate_limits",
        )
    rule, limit = limits[0], limits[0].ratelimit
    count = min(max_burst, BURST_FACTOR * limit.requests_per_period + 1)
    url = base + "/"
    logger.info("security: up to %d requests to %s to meet rule %s", count, url, rule.id)
    deadline = time.monotonic() + burst_seconds
    statuses: dict[str, int] = {}
    for number in range(1, count + 1):
        if time.monotonic() > deadline:
            break
        answer = fetch(client, url)
        if isinstance(answer, str):
            return Check(id="WAF-EDGE-RATE-LIMIT", title=title, ok=False, evidence=answer)
        if answer.is_edge_block:
            return Check(
                id="WAF-EDGE-RATE-LIMIT",
                title=title,
                ok=True,
                evidence=f"request {number} of GET {url} answered {answer.describe()} "
                f"(rule {rule.id}: {limit.requests_per_period} per {limit.period} s)",
            )
        statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
    seen = ", ".join(f"{n}x {status}" for status, n in statuses.items())
    return Check(
        id="WAF-EDGE-RATE-LIMIT",
        title=title,
        ok=False,
        evidence=f"{sum(statuses.values())} requests to {url} within {burst_seconds:g} s, none "
        f"refused by the edge ({seen or 'no answer'}); rule {rule.id} "
        f"({limit.requests_per_period} per {limit.period} s) is not deployed, or its "
        "expression does not match /: run doit tunnel",
    )
