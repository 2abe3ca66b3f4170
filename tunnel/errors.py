"""The tunnel package's exceptions: one root, one short class per way a tunnel step can fail.

Every message is one line a user can act on: what was wrong, what was expected, what to do.
The CLI prints ``str(error)`` and exits non-zero.

    TunnelError
    ├── ConfigError            a config or spec file cannot be read (missing, not YAML)
    ├── ValidationError        a config breaks cloudflared's rules (carries one Problem per rule)
    ├── RegexError             a path regex does not compile as Go's regexp would
    ├── RegexUnsupported       a valid Go regex that google-re2 cannot evaluate here
    ├── BadURL                 a URL to match that Go's parser rejects or that has no host
    ├── SettingsError          CLOUDFLARE_API_TOKEN / _ACCOUNT_ID / _BASE_URL missing or malformed
    └── ProvisionError         a Cloudflare step failed (carries what was already changed)
        ├── PermissionDenied   403: names the token permissions needed
        ├── RateLimited        429: try again later
        ├── ApiUnavailable     5xx, timeouts, no connection
        ├── ZoneNotFound       the spec's zone is not in the account
        ├── Conflict           something in the account blocks the change (e.g. an A record)
        └── PlanRefused        the zone's plan does not allow a rule of the spec (checked first)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The API token permissions provisioning needs, as the dashboard's token form names them
#: (group · item · level). The API calls the last one "Zone WAF Write"; it covers custom rules
#: and rate-limiting rules (developers.cloudflare.com/waf/custom-rules/create-api/).
REQUIRED_PERMISSIONS = (
    "Account · Cloudflare Tunnel · Edit",
    "Zone · DNS · Edit",
    "Zone · Zone WAF · Edit",
)


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with a config file; ``rule`` counts ingress rules from 1 as cloudflared.

    A ``warning`` is something cloudflared reads and runs anyway (an unknown key, a number
    where text belongs); anything else stops cloudflared.
    """

    file: str | None = None
    rule: int | None = None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = [part for part in (self.file, f"rule #{self.rule}" if self.rule else None) if part]
        return f"{': '.join(where)}: {self.message}" if where else self.message


class TunnelError(Exception):
    """Root of every error the tunnel package raises on purpose."""


class ConfigError(TunnelError):
    """A config or spec file cannot be read at all."""

    def __init__(self, file: str | None, rule: int | None, message: str) -> None:
        self.problem = Problem(file=file, rule=rule, message=message)
        self.file = file
        self.rule = rule
        self.message = message
        super().__init__(str(self.problem))


class ValidationError(TunnelError):
    """A config breaks cloudflared's ingress rules; ``problems`` has one entry per finding."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = [problem for problem in problems if not problem.warning]
        first = str(self.problems[0]) if self.problems else "invalid configuration"
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))


class RegexError(TunnelError):
    """A pattern that Go's regexp/syntax rejects; the message is Go's own."""

    def __init__(self, code: str, expr: str) -> None:
        self.code = code
        self.expr = expr
        super().__init__(f"error parsing regexp: {code}: `{expr}`")


class RegexUnsupported(TunnelError):
    """A pattern Go accepts but google-re2 cannot match (a Unicode table it lacks, say)."""

    def __init__(self, pattern: str, reason: str) -> None:
        self.pattern = pattern
        self.reason = reason
        super().__init__(
            f"cannot evaluate path regex {pattern!r} here: {reason}; "
            "check it with `cloudflared tunnel ingress rule` instead"
        )


class SettingsError(TunnelError):
    """A setting read from the environment is missing or malformed (never echoes secrets)."""

    def __init__(self, name: str, problem: str, fix: str) -> None:
        self.name = name
        super().__init__(f"{name} {problem}; {fix}")


class ProvisionError(TunnelError):
    """A provisioning run stopped; ``done`` lists what it had already changed, in order."""

    def __init__(self, message: str, done: Sequence[str] = ()) -> None:
        self.reason = message
        self.done = list(done)
        super().__init__(message + _done_suffix(self.done))

    def with_done(self, done: Sequence[str]) -> ProvisionError:
        """The same error, re-raised with the list of changes already made."""
        copy = type(self).__new__(type(self))
        ProvisionError.__init__(copy, self.reason, done)
        return copy


class PermissionDenied(ProvisionError):
    """The API token lacks a permission (HTTP 403)."""


class RateLimited(ProvisionError):
    """The API rate limit was hit (HTTP 429)."""


class ApiUnavailable(ProvisionError):
    """The API answered 5xx, timed out or could not be reached."""


class ZoneNotFound(ProvisionError):
    """The zone named in the spec does not exist in the account."""


class Conflict(ProvisionError):
    """Something already in the account blocks the change."""


class PlanRefused(ProvisionError):
    """The zone's plan would refuse rules of the spec; found before anything was written."""

    def __init__(self, refusals: Sequence[str]) -> None:
        self.refusals = list(refusals)
        more = f" (and {len(self.refusals) - 1} more)" if len(self.refusals) > 1 else ""
        super().__init__(self.refusals[0] + more if self.refusals else "the plan refuses a rule")


def _done_suffix(done: Sequence[str]) -> str:
    if not done:
        return " (nothing was changed)"
    return " (already changed, in order: " + "; ".join(done) + ")"


class BadURL(TunnelError):
    """A URL given to the matcher that Go's URL parser rejects or that has no host."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"{url!r} is not a URL cloudflared can match: {reason}")
