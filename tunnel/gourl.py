"""Go's ``net/url.Parse`` and ``net.SplitHostPort``, as far as cloudflared relies on them.

cloudflared decides whether a service is valid, and which host and path a request has, with
Go's URL parser, whose answers differ from ``urllib.parse``: ``localhost:8080`` has the scheme
``localhost`` and no host; ``http://app:8080/`` has the path ``/``; ``http://a b`` is an error.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["GoURL", "URLError", "parse_url", "split_host_port"]

# ASCII characters Go allows unescaped in a host (besides letters and digits).
_HOST_CHARS = set("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_CHARS = set("-._:~!$&'()*+,;=%@")
_HEX = set("0123456789abcdefABCDEF")


class URLError(ValueError):
    """Go would not parse this URL; the message follows Go's."""


@dataclass(frozen=True, kw_only=True)
class GoURL:
    """The parts of a parsed URL cloudflared looks at."""

    scheme: str = ""
    opaque: str = ""
    host: str = ""
    path: str = ""
    raw_query: str = ""

    @property
    def hostname(self) -> str:
        """Go's ``URL.Hostname()``: the host without port or IPv6 brackets."""
        host = self.host
        colon = host.rfind(":")
        if colon != -1 and _valid_optional_port(host[colon:]):
            host = host[:colon]
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host


def parse_url(raw: str) -> GoURL:
    """Parse like Go's ``url.Parse``; URLError where Go returns an error."""
    rest, _, fragment = raw.partition("#")
    url = _parse(rest)
    if fragment:
        _unescape(fragment, "fragment")
    return url


def _parse(raw: str) -> GoURL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise URLError(f"parse {raw!r}: net/url: invalid control character in URL")
    if raw == "*":
        return GoURL(path="*")
    scheme, rest = _get_scheme(raw)
    scheme = scheme.lower()
    query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return GoURL(scheme=scheme, opaque=rest, raw_query=query)
        segment = rest.partition("/")[0]
        if ":" in segment:
            raise URLError(f"parse {raw!r}: first path segment in URL cannot contain colon")
    host = ""
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        host = _parse_authority(scheme, authority, raw)
    path = _unescape(rest, "path") if rest else ""
    return GoURL(scheme=scheme, host=host, path=path, raw_query=query)


def _get_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise URLError(f"parse {raw!r}: missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _parse_authority(scheme: str, authority: str, raw: str) -> str:
    at = authority.rfind("@")
    host = _parse_host(scheme, authority[at + 1 :] if at >= 0 else authority, raw)
    if at >= 0:
        userinfo = authority[:at]
        if not all((c.isascii() and c.isalnum()) or c in _USERINFO_CHARS for c in userinfo):
            raise URLError(f"parse {raw!r}: net/url: invalid userinfo")
        _unescape(userinfo, "userinfo")
    return host


def _parse_host(scheme: str, host: str, raw: str) -> str:
    open_bracket = host.rfind("[")
    if open_bracket > 0:
        raise URLError(f"parse {raw!r}: invalid IP-literal")
    if open_bracket == 0:
        close = host.rfind("]")
        if close < 0:
            raise URLError(f"parse {raw!r}: missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise URLError(f"parse {raw!r}: invalid port {colon_port!r} after host")
        literal = _unescape(host[1:close], "host")
        address = literal.split("%", 1)[0]
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise URLError(f"parse {raw!r}: invalid host: {address!r}") from None
        if parsed.version == 4:
            raise URLError(f"parse {raw!r}: invalid IP-literal")
        return f"[{literal}]{colon_port}"
    first = host.find(":")
    if first != -1:
        last = host.rfind(":")
        # Go 1.26+ allows only one colon in http(s) hosts; other schemes split at the last.
        index = first if scheme in ("http", "https") else last
        colon_port = host[index:]
        if not _valid_optional_port(colon_port):
            raise URLError(f"parse {raw!r}: invalid port {colon_port!r} after host")
    return _unescape(host, "host")


def _valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    return port[0] == ":" and all("0" <= c <= "9" for c in port[1:])


def _unescape(s: str, mode: str) -> str:
    """Go's ``unescape``: decode ``%XX`` (as UTF-8 bytes); URLError on a bad escape."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError(f"invalid URL escape {s[i : i + 3]!r}")
            if mode == "host" and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise URLError(f"invalid URL escape {s[i : i + 3]!r}")
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
            continue
        if mode == "host" and c.isascii() and not c.isalnum() and c not in _HOST_CHARS:
            raise URLError(f"invalid character {c!r} in host name")
        out.extend(c.encode("utf-8", "surrogatepass"))
        i += 1
    return out.decode("utf-8", "replace")


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``; ValueError where Go returns an error (e.g. no port)."""
    last = hostport.rfind(":")
    if last < 0:
        raise ValueError(f"address {hostport}: missing port in address")
    skip_open, skip_close = 0, 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError(f"address {hostport}: missing ']' in address")
        if end + 1 != last:
            if end + 1 < len(hostport) and hostport[end + 1] == ":":
                raise ValueError(f"address {hostport}: too many colons in address")
            raise ValueError(f"address {hostport}: missing port in address")
        host = hostport[1:end]
        skip_open, skip_close = 1, end + 1
    else:
        host = hostport[:last]
        if ":" in host:
            raise ValueError(f"address {hostport}: too many colons in address")
    if "[" in hostport[skip_open:]:
        raise ValueError(f"address {hostport}: unexpected '[' in address")
    if "]" in hostport[skip_close:]:
        raise ValueError(f"address {hostport}: unexpected ']' in address")
    return host, hostport[last + 1 :]
