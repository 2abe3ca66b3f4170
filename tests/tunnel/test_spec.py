"""The declarative spec file, including the example at the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunnel.errors import ValidationError
from tunnel.spec import load_spec, parse_spec
from tunnel.validate import check_config
from tunnel.waf import check_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "tunnel.yaml"


def base() -> dict[str, object]:
    return {
        "tunnel": "t",
        "zone": "example.com",
        "hostname": "app.example.com",
        "service": "http://app:8080",
    }


def test_the_example_spec_is_valid_and_every_rule_has_a_description() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.hostname == "app.example.com"
    assert spec.service == "http://app:8080"
    assert len(spec.custom_rules) == 2
    assert len(spec.rate_limits) == 1
    assert all(f.ok for f in check_rules(spec.rules, ref_prefix=spec.ref_prefix))
    assert check_config(spec.ingress_config()) == []


def test_ingress_is_the_hostname_then_the_catch_all() -> None:
    config = parse_spec(base()).ingress_config()
    assert [(r.hostname, r.service) for r in config.ingress] == [
        ("app.example.com", "http://app:8080"),
        ("", "http_status:404"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"hostname": "app.example.org"},
            "hostname 'app.example.org' is not in zone 'example.com'",
        ),
        (
            {"service": "http://app:8080/"},
            "ingress rules don't support proxying to a different path",
        ),
        ({"zone": None}, "zone is required"),
        ({"colour": "blue"}, "unknown key 'colour'"),
        (
            {"waf": {"custom_rules": [{"id": "x", "expression": "e", "action": "block"}]}},
            "description is required",
        ),
        ({"originRequest": {"connectTimeout": 5}}, "Go duration string"),
        # cloudflared would only warn, but the key would be lost on the way to the API.
        (
            {"originRequest": {"conectTimeout": "1s"}},
            "unknown key 'conectTimeout' in originRequest",
        ),
    ],
)
def test_spec_mistakes_are_reported(change: dict[str, object], message: str) -> None:
    data = {**base(), **change}
    with pytest.raises(ValidationError) as caught:
        parse_spec({k: v for k, v in data.items() if v is not None}, source="tunnel.yaml")
    assert any(message in str(p) for p in caught.value.problems)


def test_example_parses_the_same_from_text() -> None:
    assert parse_spec(yaml.safe_load(EXAMPLE.read_text())) == load_spec(EXAMPLE)
