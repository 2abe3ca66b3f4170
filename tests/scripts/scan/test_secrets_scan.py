"""Secret shapes, secret files and secret settings. Every planted secret is assembled at run
time, so this file itself holds nothing a secret scanner (trivy in ``doit scan``) would flag."""

from __future__ import annotations

import pytest

from scripts.scan.secrets_scan import (
    secret_file_kind,
    secret_in_command,
    secret_kinds,
    secret_setting,
)

AWS_KEY_ID = "AKIA" + "Q" * 16
GITHUB_TOKEN = "ghp" + "_" + "a1B2" * 9
PRIVATE_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\n" + "MIIE" + "q" * 60 + "\n"
TUNNEL_TOKEN = "eyJhIjoi" + "Y" * 60
JWT = "eyJ" + "h" * 20 + ".eyJ" + "p" * 20 + "." + "s" * 20


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (AWS_KEY_ID, "aws-access-key-id"),
        (GITHUB_TOKEN, "github-token"),
        (PRIVATE_KEY, "private-key"),
        (TUNNEL_TOKEN, "cloudflare-tunnel-token"),
        (JWT, "jwt"),
        ("xox" + "b-" + "1234567890-abc", "slack-token"),
    ],
)
def test_credential_shapes_are_found_in_any_bytes(text: str, kind: str) -> None:
    assert kind in secret_kinds(b"\x00binary\x7f " + text.encode() + b" trailing")


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN %s-----",  # the format string in every libcrypto
        "-----BEGIN CERTIFICATE-----\nMIIB",  # public material
        "sha256:" + "a" * 64,  # digests
        "AKIA-lowercase-akiaqqqq",
        "eyJhbGciOi",  # a JWT header alone
    ],
)
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert secret_kinds(text.encode()) == []


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("root/.netrc", "netrc credentials"),
        ("home/app/.git-credentials", "git credentials"),
        ("root/.ssh/id_ed25519", "SSH private key"),
        ("root/.aws/credentials", "AWS credentials"),
        ("root/.docker/config.json", "registry credentials"),
        ("opt/app/.env", "dotenv file"),
        ("etc/credentials", None),
        ("opt/app/config.json", None),
        ("usr/lib/python3.13/netrc.pyc", None),
    ],
)
def test_files_that_hold_credentials_by_name(path: str, kind: str | None) -> None:
    assert secret_file_kind(path) == kind


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("DB_PASSWORD", "hunter2", True),
        ("API_KEY", "abc", True),
        ("APP_SECRET_KEY", "x", True),
        ("TUNNEL_TOKEN", "something", True),
        ("ANYTHING", GITHUB_TOKEN, True),
        ("TUNNEL_TOKEN_FILE", "/run/secrets/tunnel_token", False),  # a pointer, not the secret
        ("DB_PASSWORD", "", False),
        ("PATH", "/usr/bin", False),
        ("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D", False),  # a public key id
        ("APP_ACCESS_AUD", "0123abcd", False),
    ],
)
def test_settings_that_carry_a_secret(name: str, value: str, secret: bool) -> None:
    reason = secret_setting(name, value)
    assert (reason is not None) == secret
    if reason:
        assert value not in reason or not value  # the evidence never repeats the secret


def test_commands_that_carry_a_secret() -> None:
    assert (
        secret_in_command("/bin/app --password=hunter2") == "passes --password on the command line"
    )
    assert secret_in_command("/bin/app --token hunter2") == "passes --token on the command line"
    assert secret_in_command(f"RUN curl -u x:{GITHUB_TOKEN} https://h") == "holds a github-token"
    assert secret_in_command("|1 DB_PASSWORD=hunter2 /bin/sh -c make") is not None
    assert secret_in_command("/usr/bin/python3 -m app --no-token-check") is None
    assert secret_in_command("RUN --mount=type=secret,id=ca_bundle apt-get update") is None
