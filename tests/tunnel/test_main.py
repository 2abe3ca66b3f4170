"""The CLI: exit codes and one line per problem."""

from __future__ import annotations

import base64
import json
import logging
import stat
from pathlib import Path

import pytest

from tests.tunnel.api_server import API_TOKEN, CloudflareApi
from tunnel.__main__ import main

VALID = """\
ingress:
  - hostname: app.example.com
    service: http://app:8080
  - service: http_status:404
"""
EXAMPLE = Path(__file__).resolve().parents[2] / "tunnel.yaml"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(VALID)
    return path


def test_validate_valid_file(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(config), "--no-cloudflared"]) == 0
    assert capsys.readouterr().out == f"{config}: valid\n"


def test_validate_prints_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yml"
    path.write_text("ingress:\n  - hostname: a.example.com:80\n    service: http://app:8080/\n")
    assert main(["validate", str(path), "--no-cloudflared"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: rule #1: ") for line in lines)


def test_validate_a_file_that_is_not_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yml"
    path.write_text("ingress: [\n")
    assert main(["validate", str(path), "--no-cloudflared"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{path}: not valid YAML: line 2")


def test_validate_also_asks_cloudflared_when_it_is_on_path(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("tunnel.__main__.find_cloudflared", lambda: "/opt/cloudflared")
    seen: list[Path] = []

    def fake_validate(path: Path, *, binary: str) -> object:
        from tunnel.cloudflared import CloudflaredVerdict

        seen.append(path)
        return CloudflaredVerdict(ok=False, message="Validation failed: something")

    monkeypatch.setattr("tunnel.__main__.validate_with_cloudflared", fake_validate)
    assert main(["validate", str(config)]) == 1
    assert seen == [config]
    assert capsys.readouterr().out.splitlines() == [
        f"{config}: valid",
        "cloudflared: invalid: Validation failed: something",
        "note: this validator and cloudflared disagree; cloudflared's word is final",
    ]


@pytest.mark.parametrize(
    ("url", "index"), [("https://app.example.com/x", "0"), ("https://other.org/", "1")]
)
def test_match_prints_the_zero_based_index(
    config: Path, url: str, index: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["match", str(config), url]) == 0
    assert capsys.readouterr().out == f"{index}\n"


def test_match_refuses_an_invalid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yml"
    path.write_text("ingress:\n  - hostname: a.example.com\n    service: http://a:1\n")
    assert main(["match", str(path), "https://a.example.com/"]) == 1
    assert "the last ingress rule must match all URLs" in capsys.readouterr().out


def test_render_prints_config_yml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.startswith("ingress:\n- hostname: app.example.com\n")


def test_waf_check_passes_for_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["waf-check", str(EXAMPLE)]) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_provision_without_a_token_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "0123456789abcdef0123456789abcdef")
    assert main(["plan", str(EXAMPLE)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith("error: CLOUDFLARE_API_TOKEN is not set")


def test_validate_warns_about_unknown_keys_and_exits_0_as_cloudflared_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yml"
    path.write_text("extraKey: 1\nwarp-routing:\n  enabled: true\n" + VALID)

    assert main(["validate", str(path), "--no-cloudflared"]) == 0

    assert capsys.readouterr().out.splitlines() == [
        f"warning: {path}: unknown top-level key 'extraKey': cloudflared ignores it (known: "
        "tunnel, credentials-file, ingress, originRequest, warp-routing, or a run flag)",
        f"warning: {path}: unknown key 'enabled' in warp-routing: cloudflared ignores it (known: "
        "connectTimeout, maxActiveFlows, tcpKeepAlive)",
        f"{path}: valid (2 warning(s))",
    ]


def test_validate_still_fails_on_what_cloudflared_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yml"
    path.write_text("warp-routing: enabled\n" + VALID)

    assert main(["validate", str(path), "--no-cloudflared"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: 'warp-routing' must be a mapping, got a string"
    ]


def test_plan_provision_and_destroy_never_print_or_log_a_secret(
    api: CloudflareApi,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "tunnel-token"
    api.fail("POST", r"/zones/.*/dns_records", status=400, code=1004, message="injected")

    codes = [
        main(["-v", "plan", str(EXAMPLE)]),
        main(["-v", "provision", str(EXAMPLE), "--token-file", str(token_file)]),  # fails
        main(["-v", "provision", str(EXAMPLE), "--token-file", str(token_file)]),
        main(["-v", "destroy", str(EXAMPLE)]),
    ]

    assert codes == [0, 1, 0, 0]
    out = capsys.readouterr()
    printed = out.out + out.err + caplog.text
    assert "already changed, in order: created tunnel 'zeroport'" in printed
    assert "error: Cloudflare rejected the request to create the DNS record" in printed
    assert "changed: deleted tunnel 'zeroport'" in printed
    tunnel_token = token_file.read_text()
    secret = json.loads(base64.b64decode(tunnel_token))["s"]
    # The create answer carried both the token and the secret (as the docs show it).
    assert any(r.method == "POST" and r.path.endswith("/cfd_tunnel") for r in api.requests)
    for value in (tunnel_token, secret, API_TOKEN):
        assert value not in printed
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_destroy_dry_run_from_the_command_line(
    api: CloudflareApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add_tunnel("zeroport")

    assert main(["destroy", str(EXAMPLE), "--dry-run"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("would change: clean up the connections of tunnel 'zeroport'")
    assert api.writes == []


def test_every_plan_refusal_is_printed_and_nothing_is_written(
    api: CloudflareApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paid = tmp_path / "tunnel.yaml"
    text = EXAMPLE.read_text().replace("      period: 10\n", "      period: 60\n")
    paid.write_text(
        text.replace("      mitigation_timeout: 10\n", "      mitigation_timeout: 600\n")
    )

    assert main(["provision", str(paid)]) == 1

    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["error", "error", "nothing was changed"]
    assert "period 60 s is not one it allows (10 s)" in out[0]
    assert "mitigation_timeout 600 s is not one it allows (10 s)" in out[1]
    assert api.writes == []
