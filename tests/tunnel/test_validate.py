"""cloudflared's ingress rules, one test each; errors count rules from 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunnel.errors import ValidationError
from tunnel.model import parse_config
from tunnel.validate import check_config, check_file, load_valid_config

CATCH_ALL = {"service": "http_status:404"}


def problems(*rules: dict[str, Any], **top: Any) -> list[str]:
    config = parse_config({"ingress": list(rules), **top})
    return [str(p) for p in check_config(config)]


def test_a_valid_config_has_no_problems() -> None:
    assert (
        problems(
            {"hostname": "app.example.com", "service": "http://app:8080"},
            {"hostname": "*.example.com", "path": "^/api/", "service": "https://api"},
            CATCH_ALL,
        )
        == []
    )


def test_rules_must_be_present() -> None:
    assert problems() == [
        "the config file doesn't contain any ingress rules; add a last rule without hostname "
        "and path, e.g. `- service: http_status:404`"
    ]


@pytest.mark.parametrize(
    "last",
    [
        {"hostname": "app.example.com", "service": "http://a:1"},
        {"path": "^/x", "service": "http://a:1"},
        {"hostname": "*", "path": "/x", "service": "http://a:1"},
    ],
)
def test_the_last_rule_must_match_everything(last: dict[str, str]) -> None:
    found = problems({"hostname": "a.example.com", "service": "http://a:1"}, last)
    assert len(found) == 1
    assert found[0].startswith("rule #2: the last ingress rule must match all URLs")


@pytest.mark.parametrize("hostname", ["", "*"])
def test_no_earlier_rule_may_match_everything(hostname: str) -> None:
    first = (
        {"hostname": hostname, "service": "http://a:1"} if hostname else {"service": "http://a:1"}
    )
    found = problems(first, CATCH_ALL)
    assert len(found) == 1
    assert found[0].startswith("rule #1: this rule matches every hostname")


def test_a_catch_all_last_rule_may_be_a_star() -> None:
    assert problems({"hostname": "*", "service": "http://a:1"}) == []


@pytest.mark.parametrize("hostname", ["a*.example.com", "*.*.example.com", "app.*.com", "**"])
def test_a_wildcard_only_as_the_first_character(hostname: str) -> None:
    found = problems({"hostname": hostname, "service": "http://a:1"}, CATCH_ALL)
    assert found == [
        f"rule #1: hostname {hostname!r}: a hostname can have at most one wildcard '*' and only "
        "as its first character, for subdomains, e.g. '*.example.com'"
    ]


def test_a_leading_star_without_dot_is_allowed_as_cloudflared_does() -> None:
    assert problems({"hostname": "*example.com", "service": "http://a:1"}, CATCH_ALL) == []


@pytest.mark.parametrize("hostname", ["app.example.com:8080", "app.example.com:", "[::1]:80"])
def test_no_port_in_a_hostname(hostname: str) -> None:
    found = problems({"hostname": hostname, "service": "http://a:1"}, CATCH_ALL)
    assert found == [
        f"rule #1: hostname {hostname!r} cannot contain a port; remove the ':port' part"
    ]


@pytest.mark.parametrize("service", ["http://app:8080/", "http://app:8080/api", "https://app/x/"])
def test_a_service_url_has_no_path(service: str) -> None:
    found = problems({"hostname": "a.example.com", "service": service}, CATCH_ALL)
    assert len(found) == 1
    assert "ingress rules don't support proxying to a different path" in found[0]


@pytest.mark.parametrize("service", ["app:8080", "localhost:8080", "", "http://", "//app:80"])
def test_a_service_url_needs_scheme_and_host(service: str) -> None:
    found = problems({"hostname": "a.example.com", "service": service}, CATCH_ALL)
    assert len(found) == 1
    assert "needs a scheme and a hostname" in found[0]


@pytest.mark.parametrize("service", ["http://app:abc", "http://a b:80", "http://app%zz"])
def test_a_service_url_go_cannot_parse(service: str) -> None:
    found = problems({"hostname": "a.example.com", "service": service}, CATCH_ALL)
    assert len(found) == 1
    assert "is not a valid URL" in found[0]


@pytest.mark.parametrize(
    "service",
    [
        "http://app:8080",
        "https://app",
        "tcp://db:5432",
        "ssh://host:22",
        "http://app:8080?x=1",
        "http://[::1]:80",
    ],
)
def test_service_urls_cloudflared_accepts(service: str) -> None:
    assert problems({"hostname": "a.example.com", "service": service}, CATCH_ALL) == []


@pytest.mark.parametrize("status", ["100", "404", "999", "+200", "0200"])
def test_http_status_in_range(status: str) -> None:
    assert problems({"service": f"http_status:{status}"}) == []


@pytest.mark.parametrize("status", ["99", "1000", "-404", "abc", "", " 404", "4_04"])
def test_http_status_out_of_range_or_not_a_number(status: str) -> None:
    found = problems({"service": f"http_status:{status}"})
    assert len(found) == 1
    assert found[0].startswith("rule #1: invalid HTTP status code")


@pytest.mark.parametrize(
    "service",
    [
        "hello_world",
        "hello-world",
        "bastion",
        "unix:/run/app.sock",
        "unix+tls:/run/app.sock",
        "unix:",
        "socks-proxy",
    ],
)
def test_special_services(service: str) -> None:
    assert problems({"hostname": "a.example.com", "service": service}, CATCH_ALL) == []


def test_bastion_mode_makes_the_service_url_irrelevant() -> None:
    rule = {"hostname": "a.example.com", "service": "http://a:1/path"}
    assert problems(rule, CATCH_ALL, originRequest={"bastionMode": True}) == []


def test_socks_proxy_ip_rules_are_checked() -> None:
    found = problems(
        {
            "hostname": "a.example.com",
            "service": "socks-proxy",
            "originRequest": {
                "ipRules": [
                    {"prefix": "10.0.0.0", "allow": True},
                    {"prefix": "10.0.0.0/8", "ports": [0]},
                ]
            },
        },
        CATCH_ALL,
    )
    assert found == [
        "rule #1: socks-proxy ipRules prefix '10.0.0.0' is not a CIDR like 10.0.0.0/8",
        "rule #1: socks-proxy ipRules port 0 is invalid; it needs to be between 1 and 65535",
    ]


@pytest.mark.parametrize("path", ["(?=x)", "(?<=a)b", "(a)\\1", "a*+", "(?>a)", "\\Z"])
def test_path_regex_must_compile_in_go(path: str) -> None:
    found = problems(
        {"hostname": "a.example.com", "path": path, "service": "http://a:1"}, CATCH_ALL
    )
    assert len(found) == 1
    assert found[0].startswith(
        f"rule #1: path {path!r} is not a valid Go regexp: error parsing regexp"
    )


def test_access_needs_a_team_name_when_aud_tags_are_set() -> None:
    access = {"required": True, "audTag": ["abc"]}
    rule = {
        "hostname": "a.example.com",
        "service": "http://a:1",
        "originRequest": {"access": access},
    }
    assert problems(rule, CATCH_ALL) == [
        "rule #1: originRequest.access.teamName cannot be blank when audTag is set; set teamName "
        "to your Zero Trust team name"
    ]


@pytest.mark.parametrize(
    "access",
    [
        {"required": True},
        {"required": False, "audTag": ["a"]},
        {"required": True, "teamName": "t", "audTag": ["a"]},
    ],
)
def test_access_settings_cloudflared_accepts(access: dict[str, Any]) -> None:
    rule = {
        "hostname": "a.example.com",
        "service": "http://a:1",
        "originRequest": {"access": access},
    }
    assert problems(rule, CATCH_ALL) == []


def test_every_problem_is_reported_with_its_rule_number() -> None:
    found = problems(
        {"hostname": "a.example.com:80", "service": "http://a:1/"},
        {"hostname": "b.example.com", "path": "(?=x)", "service": "http_status:42"},
    )
    assert [line.split(":")[0] for line in found] == ["rule #1"] * 2 + ["rule #2"] * 3


def test_check_file_reports_yaml_and_structure_and_rules(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("ingress:\n  - service: http://a:1/\n    bogus: 1\n")
    assert [str(p) for p in check_file(path)] == [
        f"{path}: rule #1: unknown key 'bogus': cloudflared ignores it (known: hostname, path, "
        "service, originRequest)",
        f"{path}: rule #1: service 'http://a:1/' is an invalid address: ingress rules don't "
        "support proxying to a different path on the origin; remove the path '/' (the "
        "request's own path is kept)",
    ]


def test_load_valid_config_raises_with_all_problems(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("ingress:\n  - hostname: a.example.com\n    service: http://a:1\n")
    with pytest.raises(ValidationError, match="rule #1: the last ingress rule must match all URLs"):
        load_valid_config(path)


RULES = "ingress:\n  - hostname: a.example.com\n    service: http://app:8080\n"
ORIGIN = RULES + "    originRequest:\n"
LAST = "  - service: http_status:404\n"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        (RULES + LAST, "ok"),
        ("warp-routing:\n  enabled: true\n" + RULES + LAST, "warning"),
        ("warp-routing: enabled\n" + RULES + LAST, "error"),
        ("extraKey: 1\n" + RULES + LAST, "ok"),
        ("token: abc\n" + RULES + LAST, "ok"),
        (RULES + "    bogus: 1\n" + LAST, "warning"),
        (ORIGIN + "      connectTimout: 1s\n" + LAST, "warning"),
        (ORIGIN + "      access:\n        required: false\n        foo: 1\n" + LAST, "warning"),
        (
            ORIGIN + "      ipRules:\n        - prefix: 10.0.0.0/8\n          bar: 1\n" + LAST,
            "warning",
        ),
        ("originRequest:\n  bogus: 1\n" + RULES + LAST, "warning"),
        (ORIGIN + '      noTLSVerify: "Yes"\n' + LAST, "ok"),
        (ORIGIN + "      noTLSVerify: maybe\n" + LAST, "error"),
        (ORIGIN + '      noTLSVerify: "true"\n' + LAST, "error"),
        (ORIGIN + '      keepAliveConnections: "10"\n' + LAST, "error"),
        (ORIGIN + "      audTag: one\n" + LAST, "warning"),
        (ORIGIN + "      access:\n        audTag: one\n" + LAST, "error"),
        (ORIGIN + "      proxyPort: -1\n" + LAST, "error"),
        (ORIGIN + "      connectTimeout: 30\n" + LAST, "error"),
        (ORIGIN + '      connectTimeout: "30"\n' + LAST, "error"),
        ("ingress:\n  - hostname: 5\n    service: http://a:1\n" + LAST, "ok"),
        ("ingress:\n  - hostname: a.example.com\n    service: 8080\n" + LAST, "error"),
        ("ingress:\n  - just-a-string\n", "error"),
        ("ingress: {a: 1}\n", "error"),
    ],
)
def test_the_verdict_matches_cloudflared(tmp_path: Path, text: str, verdict: str) -> None:
    # Each verdict is what `cloudflared tunnel --config FILE ingress validate` of cloudflared
    # 2026.1.2 (the version compose.tunnel.yaml pins), built from its source, said of the same
    # text: "OK" (ok), "Warning: unused keys detected ..." and exit 0 (warning), or exit 1
    # (error). This validator errs exactly where cloudflared does and warns wherever it warns;
    # it also warns where cloudflared is silent (a top-level key it files as a run flag, a
    # secret in the file, a YAML 1.1 word or a number it converts), never failing the file.
    path = tmp_path / "config.yml"
    path.write_text(text)
    found = check_file(path)
    errors = [p for p in found if not p.warning]
    assert bool(errors) == (verdict == "error"), [str(p) for p in found]
    if verdict == "warning":
        assert found, "cloudflared warns here"
