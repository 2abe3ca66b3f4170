"""The service's settings: the one place that reads the environment.

Every knob is an ``APP_*`` environment variable read once by :meth:`Settings.from_env`. The
class attributes below are the defaults, in the units their names say. A value outside what is
allowed raises :class:`~app.errors.ConfigError`, whose message names the variable, the value
and what is allowed; ``python -m app`` prints it and exits 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from app.errors import ConfigError

SECONDS: Final = 1.0
BYTES: Final = 1
KIB: Final = 1024 * BYTES
MIB: Final = 1024 * KIB

Loop = Literal["auto", "asyncio", "uvloop"]
ClientIPHeader = Literal["x-forwarded-for", "cf-connecting-ip"]

DEFAULT_CSP: Final = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_HOSTNAME = re.compile(r"(?:\*\.|\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})*")
_TEAM = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_AUD = re.compile(r"[0-9a-f]{64}")
_LOG_LEVELS = ("debug", "info", "warning", "error")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service can be told from outside, with its defaults."""

    #: Address to listen on (APP_HOST); all interfaces, because the service runs in a container.
    host: str = "0.0.0.0"  # noqa: S104 - the container's only interface is the point
    #: TCP port (APP_PORT).
    port: int = 8080
    #: Serving processes (APP_WORKERS); 1 serves in-process with no supervisor.
    workers: int = 1
    #: Event loop (APP_LOOP): uvloop when installed ("auto"), or forced either way.
    loop: Loop = "auto"
    #: Seconds an idle keep-alive connection stays open (APP_KEEP_ALIVE_TIMEOUT). cloudflared
    #: keeps idle connections to the origin for 90 s and reuses them; if the origin closes one
    #: first (Hypercorn's default is 5 s), a request cloudflared sends on it at that moment gets
    #: EOF and the visitor a 502. So the origin must outlast cloudflared: above 90 s.
    keep_alive_timeout: float = 120 * SECONDS
    #: Open connections one serving process keeps at most (APP_MAX_CONNECTIONS); more are
    #: closed as they arrive. Above the 10,000 that ``doit bench`` holds, and lowered at start
    #: to what the descriptor limit (``ulimit -n``) leaves room for.
    max_connections: int = 12_000
    #: Seconds in-flight requests get to finish once shutdown begins (APP_GRACE_PERIOD).
    grace_period: float = 10 * SECONDS
    #: Seconds /readyz answers 503 before the listener closes (APP_SHUTDOWN_DELAY): set it to
    #: the probe period when a load balancer polls /readyz.
    shutdown_delay: float = 0 * SECONDS
    #: Largest request body accepted (APP_MAX_BODY_BYTES); larger gets 413.
    max_body_bytes: int = 1 * MIB
    #: Largest request header block accepted (APP_MAX_HEADER_BYTES); larger gets 431.
    max_header_bytes: int = 16 * KIB
    #: Longest request target, path and query, accepted (APP_MAX_URL_BYTES); longer gets 414.
    max_url_bytes: int = 8 * KIB
    #: Host header values served (APP_ALLOWED_HOSTS, comma-separated; ".example.com" or
    #: "*.example.com" also match subdomains); empty serves any Host.
    allowed_hosts: tuple[str, ...] = ()
    #: Proxies in front of the service whose forwarding headers are trusted (APP_PROXY_HOPS).
    proxy_hops: int = 0
    #: Which forwarding header names the client (APP_CLIENT_IP_HEADER).
    client_ip_header: ClientIPHeader = "x-forwarded-for"
    #: Add ``preload`` to Strict-Transport-Security (APP_HSTS_PRELOAD).
    hsts_preload: bool = False
    #: Content-Security-Policy header value (APP_CSP).
    content_security_policy: str = DEFAULT_CSP
    #: Level of the service's own log lines (APP_LOG_LEVEL).
    log_level: str = "info"
    #: One JSON line per request (APP_ACCESS_LOG).
    access_log: bool = True
    #: Port of the Prometheus /metrics listener (APP_METRICS_PORT); None keeps metrics off.
    metrics_port: int | None = None
    #: Address of the metrics listener (APP_METRICS_HOST).
    metrics_host: str = "0.0.0.0"  # noqa: S104 - the scraper is another container
    #: Cloudflare Access team domain, https://<team>.cloudflareaccess.com (APP_ACCESS_TEAM).
    access_team_domain: str | None = None
    #: Cloudflare Access application AUD tags accepted (APP_ACCESS_AUD, comma-separated).
    access_audiences: tuple[str, ...] = ()

    @property
    def access_required(self) -> bool:
        """True when requests must carry a Cloudflare Access token."""
        return self.access_team_domain is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: the process environment)."""
        env = _Env(os.environ if environ is None else environ)
        settings = cls(
            host=env.read("APP_HOST", cls.host, _host, "an IP address or a hostname"),
            port=env.integer("APP_PORT", cls.port, 1, 65535),
            workers=env.integer("APP_WORKERS", cls.workers, 1, 64),
            loop=env.choice("APP_LOOP", cls.loop, ("auto", "asyncio", "uvloop")),
            keep_alive_timeout=env.seconds(
                "APP_KEEP_ALIVE_TIMEOUT", cls.keep_alive_timeout, 1, 3600
            ),
            max_connections=env.integer("APP_MAX_CONNECTIONS", cls.max_connections, 1, 1_000_000),
            grace_period=env.seconds("APP_GRACE_PERIOD", cls.grace_period, 0, 600),
            shutdown_delay=env.seconds("APP_SHUTDOWN_DELAY", cls.shutdown_delay, 0, 600),
            max_body_bytes=env.integer("APP_MAX_BODY_BYTES", cls.max_body_bytes, 0, 1 << 40),
            max_header_bytes=env.integer(
                "APP_MAX_HEADER_BYTES", cls.max_header_bytes, 1 * KIB, 1 * MIB
            ),
            max_url_bytes=env.integer("APP_MAX_URL_BYTES", cls.max_url_bytes, 1 * KIB, 1 * MIB),
            allowed_hosts=env.read(
                "APP_ALLOWED_HOSTS",
                cls.allowed_hosts,
                _hosts,
                "comma-separated hostnames (example.com, .example.com or *.example.com)",
            ),
            proxy_hops=env.integer("APP_PROXY_HOPS", cls.proxy_hops, 0, 16),
            client_ip_header=env.choice(
                "APP_CLIENT_IP_HEADER",
                cls.client_ip_header,
                ("x-forwarded-for", "cf-connecting-ip"),
            ),
            hsts_preload=env.boolean("APP_HSTS_PRELOAD", cls.hsts_preload),
            content_security_policy=env.read(
                "APP_CSP", cls.content_security_policy, _header_value, "printable ASCII, not empty"
            ),
            log_level=env.choice("APP_LOG_LEVEL", cls.log_level, _LOG_LEVELS),
            access_log=env.boolean("APP_ACCESS_LOG", cls.access_log),
            metrics_port=env.read(
                "APP_METRICS_PORT", cls.metrics_port, _optional_port, "an integer 1-65535 or empty"
            ),
            metrics_host=env.read(
                "APP_METRICS_HOST", cls.metrics_host, _host, "an IP address or a hostname"
            ),
            access_team_domain=env.read(
                "APP_ACCESS_TEAM",
                cls.access_team_domain,
                _team_domain,
                "a Cloudflare Access team name or <team>.cloudflareaccess.com",
            ),
            access_audiences=env.read(
                "APP_ACCESS_AUD",
                cls.access_audiences,
                _audiences,
                "comma-separated Access application AUD tags (64 hex characters each)",
            ),
        )
        _check_combinations(settings, env)
        return settings


class _Env:
    """Typed reads of ``APP_*`` variables; an empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def read(self, name: str, default: T, parse: Callable[[str], T | None], allowed: str) -> T:
        raw = self.raw(name)
        if raw is None:
            return default
        value = parse(raw)
        if value is None:
            raise ConfigError(name, raw, allowed)
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int | None:
            try:
                value = int(raw)
            except ValueError:
                return None
            return value if low <= value <= high else None

        return self.read(name, default, parse, f"an integer {low}-{high}")

    def seconds(self, name: str, default: float, low: float, high: float) -> float:
        def parse(raw: str) -> float | None:
            try:
                value = float(raw)
            except ValueError:
                return None
            return value if low <= value <= high else None

        return self.read(name, default, parse, f"a number of seconds {low:g}-{high:g}")

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool | None:
            lowered = raw.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            return None

        return self.read(name, default, parse, "true or false (1/0, yes/no, on/off)")

    def choice(self, name: str, default: T, choices: tuple[T, ...]) -> T:
        by_name = {str(choice): choice for choice in choices}
        return self.read(
            name, default, lambda raw: by_name.get(raw.lower()), f"one of {', '.join(by_name)}"
        )


def _check_combinations(settings: Settings, env: _Env) -> None:
    if (settings.access_team_domain is None) != (not settings.access_audiences):
        missing = "APP_ACCESS_AUD" if settings.access_team_domain else "APP_ACCESS_TEAM"
        raise ConfigError(
            missing, env.raw(missing) or "", "set together with the other APP_ACCESS_* variable"
        )
    if settings.metrics_port is not None:
        if settings.metrics_port == settings.port:
            raise ConfigError(
                "APP_METRICS_PORT", env.raw("APP_METRICS_PORT"), "a port other than APP_PORT"
            )
        if settings.workers != 1:
            # Each worker would keep its own counters and the scrape would see one at random.
            raise ConfigError(
                "APP_METRICS_PORT", env.raw("APP_METRICS_PORT"), "empty when APP_WORKERS > 1"
            )


def _host(raw: str) -> str | None:
    if _is_ip(raw):
        return raw
    lowered = raw.lower()
    wildcard = lowered.startswith(("*", "."))
    return lowered if _HOSTNAME.fullmatch(lowered) and not wildcard else None


def _hosts(raw: str) -> tuple[str, ...] | None:
    hosts = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    valid = all(_HOSTNAME.fullmatch(host) or _is_ip(host) for host in hosts)
    return hosts if hosts and valid else None


def _is_ip(raw: str) -> bool:
    try:
        ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        return False
    return True


def _optional_port(raw: str) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 1 <= value <= 65535 else None


def _header_value(raw: str) -> str | None:
    # A CR or LF here would split the response header; refuse anything but printable ASCII.
    return raw if raw.isascii() and raw.isprintable() else None


def _team_domain(raw: str) -> str | None:
    name = raw.lower().removeprefix("https://").rstrip("/").removesuffix(".cloudflareaccess.com")
    return f"https://{name}.cloudflareaccess.com" if _TEAM.fullmatch(name) else None


def _audiences(raw: str) -> tuple[str, ...] | None:
    tags = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    return tags if tags and all(_AUD.fullmatch(tag) for tag in tags) else None
