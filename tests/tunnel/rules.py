"""WAF rules more than one test module checks, provisions, merges or sends."""

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

#: A custom rule that blocks one path.
BLOCK = FirewallRule(
    id="block-env",
    description="Block /.env",
    expression='http.request.uri.path eq "/.env"',
    action="block",
)
#: A rate limit on the API, per colo and IP.
LIMIT = FirewallRule(
    id="api",
    description="API burst",
    expression='starts_with(http.request.uri.path, "/api/")',
    action="block",
    ratelimit=RateLimit(
        characteristics=("cf.colo.id", "ip.src"),
        period=60,
        requests_per_period=100,
        mitigation_timeout=600,
    ),
)
