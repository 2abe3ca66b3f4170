"""Which ingress rule a request hits, with cloudflared's semantics.

As ``Ingress.FindMatchingRule``: the first matching rule wins (the last rule matches
everything); the Host's port is ignored; ``*.example.com`` matches any name ending in
``.example.com`` (so ``a.b.example.com``) but not ``example.com``; host names compare
case-sensitively, except that a rule's hostname is also tried in its IDNA (punycode,
lower-case) form; the path regex is searched unanchored in the decoded URL path.
"""

from __future__ import annotations

import contextlib

from tunnel import goregexp
from tunnel.errors import BadURL
from tunnel.gourl import URLError, parse_url, split_host_port
from tunnel.model import IngressRule, TunnelConfig

__all__ = ["find_matching_rule", "match_url", "rule_matches"]

_STD3_ASCII = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


def match_url(config: TunnelConfig, url: str) -> int:
    """The 0-based index of the rule ``url`` hits, as ``cloudflared tunnel ingress rule`` prints.

    ``config`` must already be valid (see :mod:`tunnel.validate`).
    """
    try:
        parsed = parse_url(url)
    except URLError as exc:
        raise BadURL(url, str(exc)) from None
    if not parsed.hostname and not parsed.scheme:
        raise BadURL(url, "it has no hostname; add a scheme, e.g. https://")
    return find_matching_rule(config, parsed.hostname, parsed.path)


def find_matching_rule(config: TunnelConfig, hostname: str, path: str) -> int:
    """Index of the first rule matching ``hostname`` (port ignored) and ``path``."""
    with contextlib.suppress(ValueError):  # ValueError: there is no port to drop
        hostname, _ = split_host_port(hostname)
    for index, rule in enumerate(config.ingress):
        if rule_matches(rule, hostname, path):
            return index
    return len(config.ingress) - 1


def rule_matches(rule: IngressRule, hostname: str, path: str) -> bool:
    """cloudflared's ``Rule.Matches``."""
    if rule.is_catch_all or rule.hostname in ("", "*"):
        host_match = True
    else:
        host_match = _match_host(rule.hostname, hostname)
        punycode = _punycode(rule.hostname)
        if not host_match and punycode:
            host_match = _match_host(punycode, hostname)
    if not host_match:
        return False
    return not rule.path or goregexp.compile_go(rule.path).search(path)


def _match_host(rule_host: str, request_host: str) -> bool:
    if rule_host == request_host:
        return True
    if rule_host.startswith("*."):
        return request_host.endswith(rule_host[1:])
    return False


def _punycode(hostname: str) -> str:
    """The IDNA lookup form of a rule hostname when it differs, else "" (as cloudflared).

    cloudflared uses golang.org/x/net/idna's Lookup profile (UTS 46, STD3 rules): it maps to
    lower case and rejects ``*``, ``_`` and labels that start or end with ``-``; when that
    fails the rule simply has no punycode form. Python's IDNA 2003 codec stands in for the
    non-ASCII labels.
    """
    labels = []
    for label in hostname.split("."):
        if label.isascii():
            if not set(label) <= _STD3_ASCII or label.startswith("-") or label.endswith("-"):
                return ""
            if label[2:4] == "--" and not label.lower().startswith("xn--"):
                return ""
            labels.append(label.lower())
            continue
        try:
            labels.append(label.encode("idna").decode("ascii"))
        except UnicodeError:
            return ""
    ascii_form = ".".join(labels)
    return ascii_form if ascii_form != hostname else ""
