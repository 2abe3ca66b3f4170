"""The config.yml model: strict reading, YAML and API JSON rendering, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tunnel.duration import SECOND, Duration
from tunnel.errors import ConfigError, ValidationError
from tunnel.model import (
    AccessConfig,
    IngressRule,
    IpRule,
    OriginRequest,
    TunnelConfig,
    from_remote,
    load_config,
    parse_config,
    read_config,
    render_remote,
    render_yaml,
)

FULL = """\
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /etc/cloudflared/creds.json
loglevel: info
originRequest:
  connectTimeout: 30s
  noTLSVerify: false
ingress:
  - hostname: app.example.com
    service: http://app:8080
    originRequest:
      keepAliveTimeout: 1m30s
      httpHostHeader: app.internal
      matchSNItoHost: true
      access:
        required: true
        teamName: myteam
        audTag: [aud1]
  - hostname: "*.example.com"
    path: ^/api/
    service: https://api:8443
    originRequest:
      ipRules:
        - prefix: 10.0.0.0/8
          ports: [443]
          allow: true
  - service: http_status:404
"""


def test_reads_every_part() -> None:
    config = parse_config(yaml.safe_load(FULL))

    assert config.tunnel == "6ff42ae2-765d-4adf-8112-31c55c1551ef"
    assert config.credentials_file == "/etc/cloudflared/creds.json"
    assert config.options == {"loglevel": "info"}
    assert config.origin_request.connect_timeout == Duration(30 * SECOND)
    assert config.origin_request.no_tls_verify is False
    first = config.ingress[0]
    assert first.origin_request.keep_alive_timeout == Duration(90 * SECOND)
    assert first.origin_request.match_sni_to_host is True
    assert first.origin_request.access == AccessConfig(
        required=True, team_name="myteam", aud_tag=("aud1",)
    )
    assert config.ingress[1].origin_request.ip_rules == (
        IpRule(prefix="10.0.0.0/8", ports=(443,), allow=True),
    )
    assert config.ingress[2].is_catch_all


def test_an_unknown_key_is_a_warning_naming_the_rule(caplog: pytest.LogCaptureFixture) -> None:
    data = {"ingress": [{"service": "http://a:1", "hostname": "a.example.com"}, {"servce": "x"}]}

    config = parse_config(data, source="config.yml")  # cloudflared runs this file

    assert len(config.ingress) == 2
    assert caplog.messages == [
        "config.yml: rule #2: unknown key 'servce': cloudflared ignores it (known: hostname, "
        "path, service, originRequest)"
    ]


def test_an_unknown_origin_request_key_is_a_warning_naming_the_rule() -> None:
    data = {"ingress": [{"service": "http://a:1", "originRequest": {"connectTimout": "1s"}}]}
    _, problems = read_config(data)
    assert [(p.rule, p.warning) for p in problems] == [(1, True)]
    assert problems[0].message.startswith("unknown key 'connectTimout' in originRequest")


def test_unknown_top_level_keys_and_secrets_are_warnings() -> None:
    _, problems = read_config({"ingres": [], "token": "x", "loglevel": "debug"})
    messages = [p.message for p in problems]
    assert messages[0].startswith("unknown top-level key 'ingres': cloudflared ignores it")
    assert messages[1].startswith("'token' is a secret: cloudflared reads it, but keep it out")
    assert all(p.warning for p in problems)


@pytest.mark.parametrize(
    ("origin", "message"),
    [
        ({"connectTimeout": 30}, 'must be a Go duration string such as "30s"'),
        ({"connectTimeout": "30"}, "missing unit in duration"),
        ({"noTLSVerify": "maybe"}, "must be true or false"),
        ({"noTLSVerify": "true"}, "must be true or false"),
        ({"keepAliveConnections": "10"}, "must be a whole number"),
        ({"proxyPort": -1}, "must not be negative"),
        ({"access": {"audTag": "one"}}, "must be a list"),
    ],
)
def test_wrong_types_are_errors(origin: dict[str, object], message: str) -> None:
    _, problems = read_config({"ingress": [{"service": "http://a:1", "originRequest": origin}]})
    assert len(problems) == 1
    assert problems[0].rule == 1
    assert not problems[0].warning
    assert message in problems[0].message


def test_yaml_1_1_words_for_booleans_are_read_with_a_warning() -> None:
    config, problems = read_config(
        {"ingress": [{"service": "http://a:1", "originRequest": {"noTLSVerify": "Yes"}}]}
    )
    assert config.ingress[0].origin_request.no_tls_verify is True
    assert [p.message for p in problems] == [
        "originRequest.noTLSVerify is 'Yes': cloudflared reads it as true; write true or false"
    ]
    assert problems[0].warning


def test_a_number_where_text_belongs_is_read_as_its_text_with_a_warning() -> None:
    config, problems = read_config({"ingress": [{"service": 8080, "hostname": 5}]})
    assert (config.ingress[0].service, config.ingress[0].hostname) == ("8080", "5")
    assert [p.message for p in problems] == [
        "hostname is 5, not text: cloudflared reads '5'; quote it",
        "service is 8080, not text: cloudflared reads '8080'; quote it",
    ]
    assert all(p.warning for p in problems)


def test_renders_yaml_with_go_durations() -> None:
    config = TunnelConfig(
        tunnel="t",
        ingress=(
            IngressRule(
                hostname="*.example.com",
                service="http://app:8080",
                origin_request=OriginRequest(connect_timeout=Duration(90 * SECOND)),
            ),
            IngressRule(service="http_status:404"),
        ),
    )
    assert render_yaml(config) == (
        "tunnel: t\n"
        "ingress:\n"
        "- hostname: '*.example.com'\n"
        "  service: http://app:8080\n"
        "  originRequest:\n"
        "    connectTimeout: 1m30s\n"
        "- service: http_status:404\n"
    )


def test_renders_api_json_with_whole_seconds() -> None:
    config = parse_config(yaml.safe_load(FULL))
    body = render_remote(config)
    assert body["config"]["originRequest"] == {"connectTimeout": 30, "noTLSVerify": False}
    assert body["config"]["ingress"][0]["originRequest"]["keepAliveTimeout"] == 90
    assert body["config"]["ingress"][0]["originRequest"]["access"] == {
        "required": True,
        "teamName": "myteam",
        "audTag": ["aud1"],
    }
    assert "tunnel" not in body["config"]


def test_api_json_refuses_fractional_seconds() -> None:
    config = TunnelConfig(
        ingress=(
            IngressRule(service="x://y", origin_request=OriginRequest(tls_timeout=Duration(1))),
        )
    )
    with pytest.raises(
        ConfigError, match="tlsTimeout is 1ns, but the remote configuration takes whole seconds"
    ):
        render_remote(config)


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = parse_config(yaml.safe_load(FULL))
    path = tmp_path / "config.yml"
    path.write_text(render_yaml(config))
    assert load_config(path) == config


def test_json_round_trip() -> None:
    config = parse_config(yaml.safe_load(FULL))
    remote_only = TunnelConfig(ingress=config.ingress, origin_request=config.origin_request)
    assert from_remote(render_remote(config)) == remote_only


def test_remote_json_needs_integer_seconds() -> None:
    with pytest.raises(ValidationError, match="whole number of seconds"):
        from_remote(
            {"config": {"ingress": [{"service": "x", "originRequest": {"tlsTimeout": "10s"}}]}}
        )


_durations = st.builds(
    Duration, st.integers(min_value=0, max_value=10**6).map(lambda s: s * SECOND)
)
_origin = st.builds(
    OriginRequest,
    connect_timeout=st.none() | _durations,
    tcp_keep_alive=st.none() | _durations,
    no_happy_eyeballs=st.none() | st.booleans(),
    keep_alive_connections=st.none() | st.integers(min_value=0, max_value=1000),
    http_host_header=st.none() | st.text(min_size=1, max_size=10),
    proxy_port=st.none() | st.integers(min_value=0, max_value=65535),
)
_rules = st.lists(
    st.builds(
        IngressRule,
        hostname=st.sampled_from(["", "a.example.com", "*.example.com"]),
        path=st.sampled_from(["", "^/x"]),
        service=st.sampled_from(["http://a:1", "http_status:404", "hello_world"]),
        origin_request=_origin,
    ),
    max_size=4,
)


@given(rules=_rules, origin=_origin)
def test_yaml_and_json_round_trips_hold_for_any_config(
    rules: list[IngressRule], origin: OriginRequest
) -> None:
    config = TunnelConfig(ingress=tuple(rules), origin_request=origin)
    assert parse_config(yaml.safe_load(render_yaml(config))) == config
    assert from_remote(render_remote(config)) == config


def test_rule_settings_fall_back_to_the_top_level() -> None:
    top = OriginRequest(connect_timeout=Duration(SECOND), bastion_mode=True)
    rule = OriginRequest(connect_timeout=Duration(2 * SECOND))
    merged = rule.merged_over(top)
    assert merged.connect_timeout == Duration(2 * SECOND)
    assert merged.bastion_mode is True
