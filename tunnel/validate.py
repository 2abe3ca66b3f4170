"""cloudflared's ingress rules, checked before cloudflared sees the file.

The checks follow ``ingress.validateIngress`` in cloudflared: every rule's service must be one
of the forms cloudflared knows; Access settings must be complete; a hostname may carry ``*``
only as its first character and no port; the last rule must match everything and no earlier
rule may; a path must compile as a Go regexp. cloudflared stops at the first error; this
reports all of them, each naming its rule counted from 1 as cloudflared's messages do.

Warnings (:attr:`Problem.warning`: an unknown key, a number where text belongs) are reported
too, and do not make a file invalid: cloudflared prints them and runs the file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from tunnel import goregexp
from tunnel.errors import ConfigError, Problem, RegexError, ValidationError
from tunnel.gourl import URLError, parse_url, split_host_port
from tunnel.model import IngressRule, IpRule, TunnelConfig, read_config
from tunnel.yamlio import load_yaml_file

__all__ = ["check_config", "check_file", "errors", "load_valid_config"]

HELLO_WORLD = ("hello_world", "hello-world")
BASTION = "bastion"
SOCKS_PROXY = "socks-proxy"
_CATCH_ALL_HINT = "add a last rule without hostname and path, e.g. `- service: http_status:404`"


def check_config(config: TunnelConfig, *, source: str | None = None) -> list[Problem]:
    """Every way ``config`` breaks cloudflared's ingress rules (empty when it is valid)."""
    problems: list[Problem] = []

    def add(rule: int | None, message: str) -> None:
        problems.append(Problem(file=source, rule=rule, message=message))

    rules = config.ingress
    if not rules:
        add(None, f"the config file doesn't contain any ingress rules; {_CATCH_ALL_HINT}")
        return problems
    for index, rule in enumerate(rules):
        number = index + 1
        merged = rule.origin_request.merged_over(config.origin_request)
        for message in _service_problems(rule, bastion_mode=bool(merged.bastion_mode)):
            add(number, message)
        access = rule.origin_request.access
        if access is not None and access.required and not access.team_name and access.aud_tag:
            add(
                number,
                "originRequest.access.teamName cannot be blank when audTag is set; "
                "set teamName to your Zero Trust team name",
            )
        for message in _hostname_problems(rule, is_last=index == len(rules) - 1):
            add(number, message)
        if rule.path:
            try:
                goregexp.check(rule.path)
            except RegexError as exc:
                add(number, f"path {rule.path!r} is not a valid Go regexp: {exc}")
    return problems


def _service_problems(rule: IngressRule, *, bastion_mode: bool) -> list[str]:
    """cloudflared's service check, in its order of precedence."""
    service = rule.service
    if service.startswith(("unix:", "unix+tls:")):
        return []  # cloudflared does not check the socket path
    if service.startswith("http_status:"):
        return _status_problems(service.removeprefix("http_status:"))
    if service in HELLO_WORLD:
        return []
    if service == SOCKS_PROXY:
        return [p for ip_rule in rule.origin_request.ip_rules for p in _ip_rule_problems(ip_rule)]
    if service == BASTION or bastion_mode:
        return []  # bastion mode ignores the service URL
    try:
        url = parse_url(service)
    except URLError as exc:
        return [f"service {service!r} is not a valid URL: {exc}"]
    if not url.scheme or not url.hostname:
        return [
            f"service {service!r} is an invalid address: it needs a scheme and a hostname, "
            "e.g. http://app:8080, or one of http_status:NNN, hello_world, bastion, "
            "socks-proxy, unix:/path"
        ]
    if url.path:
        return [
            f"service {service!r} is an invalid address: ingress rules don't support proxying "
            f"to a different path on the origin; remove the path {url.path!r} "
            "(the request's own path is kept)"
        ]
    return []


def _status_problems(code: str) -> list[str]:
    # strconv.Atoi: an optional sign and ASCII digits, nothing else (no spaces, no "_").
    digits = code[1:] if code[:1] in ("+", "-") else code
    if not digits or not digits.isascii() or not digits.isdigit():
        return [f"invalid HTTP status code {code!r}: expected http_status:NNN with NNN in 100-999"]
    status = int(code)
    if not 100 <= status <= 999:
        return [f"invalid HTTP status code: {status}; expected a number in 100-999"]
    return []


def _ip_rule_problems(rule: IpRule) -> list[str]:
    if not rule.prefix:
        return ["socks-proxy ipRules entry has no prefix; set prefix to a CIDR like 10.0.0.0/8"]
    try:
        if "/" not in rule.prefix:
            raise ValueError(rule.prefix)
        ipaddress.ip_network(rule.prefix, strict=False)
    except ValueError:
        return [f"socks-proxy ipRules prefix {rule.prefix!r} is not a CIDR like 10.0.0.0/8"]
    return [
        f"socks-proxy ipRules port {port} is invalid; it needs to be between 1 and 65535"
        for port in rule.ports
        if not 1 <= port <= 65535
    ]


def _hostname_problems(rule: IngressRule, *, is_last: bool) -> list[str]:
    problems: list[str] = []
    hostname = rule.hostname
    try:
        split_host_port(hostname)
    except ValueError:
        pass
    else:
        problems.append(f"hostname {hostname!r} cannot contain a port; remove the ':port' part")
    if hostname.rfind("*") > 0:
        problems.append(
            f"hostname {hostname!r}: a hostname can have at most one wildcard '*' and only as "
            "its first character, for subdomains, e.g. '*.example.com'"
        )
    if is_last and not rule.is_catch_all:
        problems.append(
            "the last ingress rule must match all URLs (no hostname or path filter); "
            + _CATCH_ALL_HINT
        )
    if not is_last and rule.is_catch_all:
        problems.append(
            f"this rule matches every hostname ({hostname or 'no hostname'!s}, no path), so the "
            "rules after it would never be used; give it a hostname or a path, or make it last"
        )
    return problems


def _read_and_check(path: Path) -> tuple[TunnelConfig, list[Problem]]:
    try:
        data = load_yaml_file(path)
    except ConfigError as exc:
        return TunnelConfig(), [exc.problem]
    config, problems = read_config(data, source=str(path))
    if errors(problems) and not config.ingress:
        # The rules themselves could not be read; "no ingress rules" would only add noise.
        return config, problems
    return config, problems + check_config(config, source=str(path))


def errors(problems: list[Problem]) -> list[Problem]:
    """The problems that make cloudflared refuse a file (not the warnings)."""
    return [problem for problem in problems if not problem.warning]


def check_file(path: Path) -> list[Problem]:
    """Every problem with the config file at ``path``: unreadable, malformed, invalid or warned."""
    return _read_and_check(path)[1]


def load_valid_config(path: Path) -> TunnelConfig:
    """Read ``path`` and return its config; ValidationError when cloudflared would reject it."""
    config, problems = _read_and_check(path)
    if errors(problems):
        raise ValidationError(problems)
    return config
