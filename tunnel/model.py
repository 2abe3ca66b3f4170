"""A typed model of cloudflared's ``config.yml``, read from YAML and written as YAML or API JSON.

Two renderings of the same :class:`TunnelConfig`:

* :func:`render_yaml` writes ``config.yml`` for a locally-managed tunnel; durations are Go
  duration strings (``30s``, ``1m30s``) as cloudflared's YAML decoder requires.
* :func:`render_remote` writes the body of ``PUT /accounts/{id}/cfd_tunnel/{id}/configurations``
  for a remotely-managed tunnel, ``{"config": {"ingress": [...], "originRequest": {...}}}``;
  there durations are whole seconds, as cloudflared's ``CustomDuration.UnmarshalJSON`` reads them.

Reading follows cloudflared 2026.1.2 (``config.ReadConfigFile``): it decodes the YAML once
leniently, which fails on a value of the wrong type (an error here), then once strictly only to
collect warnings. So an unknown key, anywhere, is a warning naming its rule and cloudflared runs
on; so are a number or a YAML 1.1 word (``yes``, ``off``) where text or a boolean belongs, which
its decoder converts. Top-level keys it does not know land in its map of run flags, silently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from tunnel.duration import Duration, DurationError
from tunnel.errors import ConfigError, Problem, ValidationError
from tunnel.yamlio import load_yaml_file

__all__ = [
    "AccessConfig",
    "IngressRule",
    "IpRule",
    "OriginRequest",
    "TunnelConfig",
    "WarpRouting",
    "from_remote",
    "load_config",
    "parse_config",
    "read_config",
    "render_remote",
    "render_yaml",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AccessConfig:
    """``originRequest.access``: cloudflared checks the Cloudflare Access JWT itself."""

    required: bool = False
    team_name: str = ""
    aud_tag: tuple[str, ...] = ()
    environment: str = ""


@dataclass(frozen=True, kw_only=True)
class IpRule:
    """``originRequest.ipRules`` entry: which networks a ``socks-proxy`` may reach."""

    prefix: str | None = None
    ports: tuple[int, ...] = ()
    allow: bool = False


@dataclass(frozen=True, kw_only=True)
class OriginRequest:
    """How cloudflared talks to the origin; ``None`` means "not set, use the default"."""

    connect_timeout: Duration | None = None
    tls_timeout: Duration | None = None
    tcp_keep_alive: Duration | None = None
    no_happy_eyeballs: bool | None = None
    keep_alive_connections: int | None = None
    keep_alive_timeout: Duration | None = None
    http_host_header: str | None = None
    origin_server_name: str | None = None
    match_sni_to_host: bool | None = None
    ca_pool: str | None = None
    no_tls_verify: bool | None = None
    disable_chunked_encoding: bool | None = None
    bastion_mode: bool | None = None
    proxy_address: str | None = None
    proxy_port: int | None = None
    proxy_type: str | None = None
    ip_rules: tuple[IpRule, ...] = ()
    http2_origin: bool | None = None
    access: AccessConfig | None = None

    def merged_over(self, defaults: OriginRequest) -> OriginRequest:
        """This rule's settings with unset ones taken from the top-level ``defaults``."""
        changes = {
            f.name: getattr(defaults, f.name)
            for f in fields(self)
            if getattr(self, f.name) in (None, ())
        }
        return replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class IngressRule:
    """One ingress rule; an empty hostname and path match everything."""

    hostname: str = ""
    path: str = ""
    service: str = ""
    origin_request: OriginRequest = field(default_factory=OriginRequest)

    @property
    def is_catch_all(self) -> bool:
        """cloudflared's test: no hostname (or ``*``) and no path."""
        return self.hostname in ("", "*") and self.path == ""


@dataclass(frozen=True, kw_only=True)
class WarpRouting:
    """``warp-routing``: private-network routing settings."""

    connect_timeout: Duration | None = None
    max_active_flows: int | None = None
    tcp_keep_alive: Duration | None = None


@dataclass(frozen=True, kw_only=True)
class TunnelConfig:
    """cloudflared's ``config.yml``."""

    tunnel: str = ""
    credentials_file: str = ""
    ingress: tuple[IngressRule, ...] = ()
    origin_request: OriginRequest = field(default_factory=OriginRequest)
    warp_routing: WarpRouting | None = None
    #: Other ``cloudflared tunnel run`` flags given as top-level keys (``loglevel``, ...).
    options: Mapping[str, Any] = field(default_factory=dict)


# (attribute, key in YAML and JSON, kind) for every originRequest setting cloudflared reads.
_ORIGIN_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("connect_timeout", "connectTimeout", "duration"),
    ("tls_timeout", "tlsTimeout", "duration"),
    ("tcp_keep_alive", "tcpKeepAlive", "duration"),
    ("no_happy_eyeballs", "noHappyEyeballs", "bool"),
    ("keep_alive_connections", "keepAliveConnections", "int"),
    ("keep_alive_timeout", "keepAliveTimeout", "duration"),
    ("http_host_header", "httpHostHeader", "str"),
    ("origin_server_name", "originServerName", "str"),
    ("match_sni_to_host", "matchSNItoHost", "bool"),
    ("ca_pool", "caPool", "str"),
    ("no_tls_verify", "noTLSVerify", "bool"),
    ("disable_chunked_encoding", "disableChunkedEncoding", "bool"),
    ("bastion_mode", "bastionMode", "bool"),
    ("proxy_address", "proxyAddress", "str"),
    ("proxy_port", "proxyPort", "uint"),
    ("proxy_type", "proxyType", "str"),
    ("ip_rules", "ipRules", "ip_rules"),
    ("http2_origin", "http2Origin", "bool"),
    ("access", "access", "access"),
)
_ACCESS_FIELDS = (
    ("required", "required", "bool"),
    ("team_name", "teamName", "str"),
    ("aud_tag", "audTag", "str_list"),
    ("environment", "environment", "str"),
)
_IP_RULE_FIELDS = (
    ("prefix", "prefix", "str"),
    ("ports", "ports", "int_list"),
    ("allow", "allow", "bool"),
)
_WARP_FIELDS = (
    ("connect_timeout", "connectTimeout", "duration"),
    ("max_active_flows", "maxActiveFlows", "uint"),
    ("tcp_keep_alive", "tcpKeepAlive", "duration"),
)
_RULE_KEYS = ("hostname", "path", "service", "originRequest")
_TOP_KEYS = ("tunnel", "credentials-file", "ingress", "originRequest", "warp-routing")
#: ``cloudflared tunnel run`` flags that may also be written as top-level config keys.
RUN_OPTIONS = frozenset(
    [
        "autoupdate-freq",
        "compression-quality",
        "dial-edge-timeout",
        "dns-resolver-addrs",
        "edge",
        "edge-bind-address",
        "edge-ip-version",
        "features",
        "grace-period",
        "ha-connections",
        "label",
        "log-directory",
        "logfile",
        "loglevel",
        "management-diagnostics",
        "max-active-flows",
        "max-edge-addr-retries",
        "max-fetch-size",
        "metrics",
        "metrics-update-freq",
        "no-autoupdate",
        "origincert",
        "pidfile",
        "post-quantum",
        "protocol",
        "region",
        "retries",
        "rpc-timeout",
        "tag",
        "transport-loglevel",
        "use-reconnect-token",
        "write-stream-timeout",
    ]
)
_SECRET_KEYS = frozenset({"token", "credentials-contents", "token-file"})
#: Text cloudflared's YAML decoder (gopkg.in/yaml.v3, decode.go) takes for a boolean field, for
#: YAML 1.1's sake; "true" and "false" in quotes it refuses.
_YAML11_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}


class _Reader:
    """Turns parsed YAML or JSON into the model, collecting one Problem per mistake."""

    def __init__(self, source: str | None, *, durations: str) -> None:
        self.source = source
        self.durations = durations  # "go" (YAML strings) or "seconds" (API JSON)
        self.problems: list[Problem] = []

    def problem(self, rule: int | None, message: str) -> None:
        self.problems.append(Problem(file=self.source, rule=rule, message=message))

    def warn(self, rule: int | None, message: str) -> None:
        self.problems.append(Problem(file=self.source, rule=rule, message=message, warning=True))

    def config(self, data: object) -> TunnelConfig:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.problem(None, f"the file must be a YAML mapping, got {_kind(data)}")
            return TunnelConfig()
        options: dict[str, Any] = {}
        for key in data:
            if key in _TOP_KEYS:
                continue
            if key in _SECRET_KEYS:
                self.warn(
                    None,
                    f"{key!r} is a secret: cloudflared reads it, but keep it out of the config "
                    "file (compose passes the token as a secret file)",
                )
            elif key in RUN_OPTIONS:
                options[str(key)] = data[key]
            else:
                known = ", ".join(_TOP_KEYS)
                self.warn(
                    None,
                    f"unknown top-level key {key!r}: cloudflared ignores it (known: {known}, "
                    "or a run flag)",
                )
        ingress: list[IngressRule] = []
        raw_rules = data.get("ingress", [])
        if raw_rules is None:
            raw_rules = []
        if not isinstance(raw_rules, Sequence) or isinstance(raw_rules, str):
            self.problem(None, f"'ingress' must be a list of rules, got {_kind(raw_rules)}")
            raw_rules = []
        for number, raw in enumerate(raw_rules, start=1):
            ingress.append(self.rule(number, raw))
        warp = data.get("warp-routing")
        return TunnelConfig(
            tunnel=self.string(None, "tunnel", data.get("tunnel", "")),
            credentials_file=self.string(
                None, "credentials-file", data.get("credentials-file", "")
            ),
            ingress=tuple(ingress),
            origin_request=self.origin_request(None, data.get("originRequest"), "originRequest"),
            warp_routing=None if warp is None else self.warp(warp),
            options=options,
        )

    def rule(self, number: int, raw: object) -> IngressRule:
        if not isinstance(raw, Mapping):
            self.problem(number, f"a rule must be a mapping with a service, got {_kind(raw)}")
            return IngressRule()
        for key in raw:
            if key not in _RULE_KEYS:
                self.warn(
                    number,
                    f"unknown key {key!r}: cloudflared ignores it (known: {', '.join(_RULE_KEYS)})",
                )
        return IngressRule(
            hostname=self.string(number, "hostname", raw.get("hostname", "")),
            path=self.string(number, "path", raw.get("path", "")),
            service=self.string(number, "service", raw.get("service", "")),
            origin_request=self.origin_request(number, raw.get("originRequest"), "originRequest"),
        )

    def origin_request(self, rule: int | None, raw: object, where: str) -> OriginRequest:
        values = self.fields(rule, raw, where, _ORIGIN_FIELDS)
        return OriginRequest(**values)

    def warp(self, raw: object) -> WarpRouting:
        return WarpRouting(**self.fields(None, raw, "warp-routing", _WARP_FIELDS))

    def fields(
        self,
        rule: int | None,
        raw: object,
        where: str,
        spec: tuple[tuple[str, str, str], ...],
    ) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problem(rule, f"{where!r} must be a mapping, got {_kind(raw)}")
            return {}
        by_key = {key: (attr, kind) for attr, key, kind in spec}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in by_key:
                known = ", ".join(by_key)
                self.warn(
                    rule, f"unknown key {key!r} in {where}: cloudflared ignores it (known: {known})"
                )
                continue
            attr, kind = by_key[key]
            converted = self.value(rule, f"{where}.{key}", kind, value)
            if converted is not None:
                values[attr] = converted
        return values

    def value(self, rule: int | None, name: str, kind: str, value: object) -> object:
        if value is None:
            return None
        if kind == "duration":
            return self.duration(rule, name, value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value in _YAML11_BOOLS:
                self.warn(
                    rule,
                    f"{name} is {value!r}: cloudflared reads it as "
                    f"{str(_YAML11_BOOLS[value]).lower()}; write true or false",
                )
                return _YAML11_BOOLS[value]
            self.problem(rule, f"{name} must be true or false, got {value!r}")
            return None
        if kind in ("int", "uint"):
            if isinstance(value, int) and not isinstance(value, bool):
                if kind == "uint" and value < 0:
                    self.problem(rule, f"{name} must not be negative, got {value}")
                    return None
                return value
            self.problem(rule, f"{name} must be a whole number, got {value!r}")
            return None
        if kind == "str":
            return self.string(rule, name, value)
        if kind == "str_list":
            items = self.list(rule, name, value)
            return tuple(self.string(rule, name, item) for item in items)
        if kind == "int_list":
            items = self.list(rule, name, value)
            return tuple(
                n for n in (self.value(rule, name, "int", i) for i in items) if n is not None
            )
        if kind == "ip_rules":
            items = self.list(rule, name, value)
            return tuple(IpRule(**self.fields(rule, item, name, _IP_RULE_FIELDS)) for item in items)
        return AccessConfig(**self.fields(rule, value, name, _ACCESS_FIELDS))

    def list(self, rule: int | None, name: str, value: object) -> list[object]:
        if isinstance(value, Sequence) and not isinstance(value, str):
            return list(value)
        self.problem(rule, f"{name} must be a list, got {_kind(value)}")
        return []

    def string(self, rule: int | None, name: str, value: object) -> str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        if isinstance(value, bool | int | float):
            # cloudflared's decoder keeps a scalar's text for a string field.
            text = str(value).lower() if isinstance(value, bool) else str(value)
            self.warn(rule, f"{name} is {value!r}, not text: cloudflared reads {text!r}; quote it")
            return text
        self.problem(rule, f"{name} must be a string, got {_kind(value)} (quote it in YAML)")
        return ""

    def duration(self, rule: int | None, name: str, value: object) -> Duration | None:
        if self.durations == "seconds":
            if isinstance(value, int) and not isinstance(value, bool):
                return Duration.of(seconds=value)
            self.problem(rule, f"{name} must be a whole number of seconds, got {value!r}")
            return None
        if not isinstance(value, str):
            self.problem(
                rule, f'{name} must be a Go duration string such as "30s" or "1m30s", got {value!r}'
            )
            return None
        try:
            return Duration.parse(value)
        except DurationError as exc:
            self.problem(rule, f"{name}: {exc}")
            return None


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "nothing" if value is None else type(value).__name__


def read_config(data: object, *, source: str | None = None) -> tuple[TunnelConfig, list[Problem]]:
    """The config in ``data`` (parsed YAML) as far as it reads, and every structural problem."""
    reader = _Reader(source, durations="go")
    config = reader.config(data)
    return config, reader.problems


def parse_config(data: object, *, source: str | None = None) -> TunnelConfig:
    """The config in ``data``; ValidationError listing every value cloudflared cannot read.

    Warnings (unknown keys and the like, which cloudflared reads past) are logged, not raised.
    """
    config, problems = read_config(data, source=source)
    if any(not problem.warning for problem in problems):
        raise ValidationError(problems)
    for problem in problems:
        logger.warning("%s", problem)
    return config


def load_config(path: Path) -> TunnelConfig:
    """Read ``config.yml``; ConfigError if it is not YAML, ValidationError if it is malformed.

    This checks the file's shape only; :func:`tunnel.validate.check_config` applies
    cloudflared's rules.
    """
    return parse_config(load_yaml_file(path), source=str(path))


def from_remote(body: Mapping[str, Any], *, source: str | None = None) -> TunnelConfig:
    """The config in a remote-configuration body (``{"config": {...}}`` or the inner object)."""
    inner = body.get("config", body)
    reader = _Reader(source, durations="seconds")
    config = reader.config(inner)
    if any(not problem.warning for problem in reader.problems):
        raise ValidationError(reader.problems)
    return config


def _dump_fields(
    obj: object, spec: tuple[tuple[str, str, str], ...], durations: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, key, kind in spec:
        value = getattr(obj, attr)
        if value is None or value in ((), ""):
            continue  # unset: cloudflared uses its default
        if kind == "duration":
            out[key] = _dump_duration(value, durations, key)
        elif kind == "ip_rules":
            out[key] = [_dump_fields(rule, _IP_RULE_FIELDS, durations) for rule in value]
        elif kind == "access":
            out[key] = _dump_fields(value, _ACCESS_FIELDS, durations)
        elif kind in ("str_list", "int_list"):
            out[key] = list(value)
        else:
            out[key] = value
    return out


def _dump_duration(value: Duration, durations: str, key: str) -> str | int:
    if durations == "go":
        return str(value)
    try:
        return value.whole_seconds
    except ValueError:
        raise ConfigError(
            None,
            None,
            f"{key} is {value}, but the remote configuration takes whole seconds; round it",
        ) from None


def _dump_rule(rule: IngressRule, durations: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.hostname:
        out["hostname"] = rule.hostname
    if rule.path:
        out["path"] = rule.path
    out["service"] = rule.service
    origin = _dump_fields(rule.origin_request, _ORIGIN_FIELDS, durations)
    if origin:
        out["originRequest"] = origin
    return out


def _dump_config(config: TunnelConfig, durations: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    origin = _dump_fields(config.origin_request, _ORIGIN_FIELDS, durations)
    if origin:
        out["originRequest"] = origin
    out["ingress"] = [_dump_rule(rule, durations) for rule in config.ingress]
    if config.warp_routing is not None:
        out["warp-routing"] = _dump_fields(config.warp_routing, _WARP_FIELDS, durations)
    return out


def render_yaml(config: TunnelConfig) -> str:
    """``config.yml`` for a locally-managed tunnel (durations as Go strings)."""
    out: dict[str, Any] = {}
    if config.tunnel:
        out["tunnel"] = config.tunnel
    if config.credentials_file:
        out["credentials-file"] = config.credentials_file
    out.update(config.options)
    out.update(_dump_config(config, "go"))
    return yaml.dump(
        out, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


class _Dumper(yaml.SafeDumper):
    """SafeDumper that double-quotes strings holding characters YAML would fold.

    PyYAML writes NEL (U+0085) and the Unicode line/paragraph separators raw inside plain or
    single-quoted scalars, where a reader takes them for line breaks; double quotes escape them.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    risky = any(not ch.isprintable() or ch in "\x85\u2028\u2029" for ch in value)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if risky else None)


_Dumper.add_representer(str, _represent_str)


def render_remote(config: TunnelConfig) -> dict[str, Any]:
    """The body of the remote-configuration PUT (durations as whole seconds).

    ``tunnel``, ``credentials-file`` and run flags belong to the connector, not to the remote
    configuration, so they are left out.
    """
    return {"config": _dump_config(config, "seconds")}
