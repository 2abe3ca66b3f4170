"""WAF rules more than one tunnel test module provisions, merges or sends."""

from __future__ import annotations

from tunnel.waf import FirewallRule, RateLimit

#: A managed challenge for bursts from one IP. Below Enterprise a challenge needs
#: ``mitigation_timeout: 0``, and the API leaves zero fields out of its answers, so what was
#: sent and what comes back differ although nothing changed.
CHALLENGE_BURST = FirewallRule(
    id="burst",
    description="Challenge a burst from one IP",
    expression='starts_with(http.request.uri.path, "/")',
    action="managed_challenge",
    ratelimit=RateLimit(period=10, requests_per_period=50, mitigation_timeout=0),
)
