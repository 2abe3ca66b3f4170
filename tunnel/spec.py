"""The declarative tunnel spec (``tunnel.yaml``): what ``python -m tunnel provision`` makes true.

tunnel: zeroport                 # tunnel name; created remotely managed (config_src cloudflare)
zone: example.com                # the zone that holds the hostname
hostname: app.example.com        # public name: proxied CNAME -> <tunnel-id>.cfargotunnel.com
service: http://app:8080         # where cloudflared sends requests for the hostname
path: ""                         # optional Go regexp limiting the hostname rule
originRequest: {connectTimeout: 10s}   # optional, cloudflared's keys and Go durations
fallback: http_status:404        # optional catch-all service (default http_status:404)
waf:
  ref_prefix: zeroport_          # rules whose ref starts with this belong to this file
  custom_rules:                  # phase http_request_firewall_custom
    - {id: ..., description: ..., expression: ..., action: block}
  rate_limits:                   # phase http_ratelimit (what a Free zone allows)
    - {id: ..., description: ..., expression: ..., action: block,
       characteristics: [cf.colo.id, ip.src], period: 10, requests_per_period: 50,
       mitigation_timeout: 10}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tunnel.errors import Problem, ValidationError
from tunnel.model import IngressRule, OriginRequest, TunnelConfig, read_config
from tunnel.validate import check_config
from tunnel.waf import FirewallRule, RateLimit
from tunnel.yamlio import load_yaml_file

__all__ = ["TunnelSpec", "load_spec", "parse_spec"]

_TOP_KEYS = ("tunnel", "zone", "hostname", "service", "path", "originRequest", "fallback", "waf")
_WAF_KEYS = ("ref_prefix", "custom_rules", "rate_limits")
_RULE_KEYS = ("id", "description", "expression", "action", "enabled", "action_parameters")
_LIMIT_KEYS = (
    "characteristics",
    "period",
    "requests_per_period",
    "mitigation_timeout",
    "counting_expression",
    "requests_to_origin",
)


@dataclass(frozen=True, kw_only=True)
class TunnelSpec:
    """One tunnel, its public hostname, and the zone's WAF and rate-limiting rules."""

    tunnel: str
    zone: str
    hostname: str
    service: str
    path: str = ""
    origin_request: OriginRequest = field(default_factory=OriginRequest)
    fallback: str = "http_status:404"
    ref_prefix: str = "zeroport_"
    custom_rules: tuple[FirewallRule, ...] = ()
    rate_limits: tuple[FirewallRule, ...] = ()

    @property
    def rules(self) -> tuple[FirewallRule, ...]:
        """Every WAF and rate-limiting rule of the spec."""
        return self.custom_rules + self.rate_limits

    def ingress_config(self) -> TunnelConfig:
        """The tunnel's ingress: the hostname rule, then the catch-all."""
        return TunnelConfig(
            ingress=(
                IngressRule(
                    hostname=self.hostname,
                    path=self.path,
                    service=self.service,
                    origin_request=self.origin_request,
                ),
                IngressRule(service=self.fallback),
            )
        )


class _SpecReader:
    def __init__(self, source: str | None) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, message: str) -> None:
        self.problems.append(Problem(file=self.source, message=message))

    def mapping(self, value: object, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(f"{where} must be a mapping")
            return {}
        for key in value:
            if key not in keys:
                self.problem(f"{where}: unknown key {key!r} (known: {', '.join(keys)})")
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(f"{where}: {key} is required")
            return ""
        if not isinstance(value, str):
            self.problem(f"{where}: {key} must be a string, got {value!r}")
            return ""
        return value

    def number(self, data: Mapping[str, Any], key: str, where: str, default: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(f"{where}: {key} must be a whole number, got {value!r}")
            return default
        return value

    def rules(self, value: object, where: str, *, rate_limits: bool) -> tuple[FirewallRule, ...]:
        if value is None:
            return ()
        if not isinstance(value, Sequence) or isinstance(value, str):
            self.problem(f"{where} must be a list of rules")
            return ()
        keys = _RULE_KEYS + (_LIMIT_KEYS if rate_limits else ())
        out = []
        for number, raw in enumerate(value, start=1):
            at = f"{where}[{number}]"
            data = self.mapping(raw, at, keys)
            limit = None
            if rate_limits:
                characteristics = data.get("characteristics", ["cf.colo.id", "ip.src"])
                if not isinstance(characteristics, list) or not all(
                    isinstance(c, str) for c in characteristics
                ):
                    self.problem(f"{at}: characteristics must be a list of strings")
                    characteristics = []
                requests_to_origin = data.get("requests_to_origin")
                limit = RateLimit(
                    characteristics=tuple(characteristics),
                    period=self.number(data, "period", at, 10),
                    requests_per_period=self.number(data, "requests_per_period", at, 0),
                    mitigation_timeout=self.number(data, "mitigation_timeout", at, 0),
                    counting_expression=self.text(data, "counting_expression", at, required=False)
                    or None,
                    requests_to_origin=requests_to_origin
                    if isinstance(requests_to_origin, bool)
                    else None,
                )
            enabled = data.get("enabled", True)
            parameters = data.get("action_parameters")
            out.append(
                FirewallRule(
                    id=self.text(data, "id", at, required=True),
                    description=self.text(data, "description", at, required=True),
                    expression=self.text(data, "expression", at, required=True),
                    action=self.text(data, "action", at, required=True),
                    enabled=enabled if isinstance(enabled, bool) else True,
                    action_parameters=parameters if isinstance(parameters, Mapping) else None,
                    ratelimit=limit,
                )
            )
        return tuple(out)


def parse_spec(data: object, *, source: str | None = None) -> TunnelSpec:
    """The spec in ``data`` (parsed YAML); ValidationError listing every problem."""
    reader = _SpecReader(source)
    top = reader.mapping(data, "the spec", _TOP_KEYS)
    waf = reader.mapping(top.get("waf"), "waf", _WAF_KEYS)
    origin_config, origin_problems = read_config(
        {"originRequest": top.get("originRequest")}, source=source
    )
    # The spec is this project's own file: what cloudflared would only warn about (an unknown
    # originRequest key) would be dropped silently on the way to the API, so it is an error.
    reader.problems.extend(replace(problem, warning=False) for problem in origin_problems)
    zone = reader.text(top, "zone", "the spec", required=True).lower().rstrip(".")
    hostname = reader.text(top, "hostname", "the spec", required=True).lower().rstrip(".")
    if zone and hostname and hostname != zone and not hostname.endswith("." + zone):
        reader.problem(f"hostname {hostname!r} is not in zone {zone!r}; use a name under {zone}")
    spec = TunnelSpec(
        tunnel=reader.text(top, "tunnel", "the spec", required=True),
        zone=zone,
        hostname=hostname,
        service=reader.text(top, "service", "the spec", required=True),
        path=reader.text(top, "path", "the spec", required=False),
        origin_request=origin_config.origin_request,
        fallback=reader.text(top, "fallback", "the spec", required=False) or "http_status:404",
        ref_prefix=reader.text(waf, "ref_prefix", "waf", required=False) or "zeroport_",
        custom_rules=reader.rules(waf.get("custom_rules"), "waf.custom_rules", rate_limits=False),
        rate_limits=reader.rules(waf.get("rate_limits"), "waf.rate_limits", rate_limits=True),
    )
    problems = reader.problems
    if not problems:
        problems = [p for p in check_config(spec.ingress_config(), source=source) if not p.warning]
    if problems:
        raise ValidationError(problems)
    return spec


def load_spec(path: Path) -> TunnelSpec:
    """Read the spec file; ConfigError if it is not YAML, ValidationError if it is wrong."""
    return parse_spec(load_yaml_file(path), source=str(path))
