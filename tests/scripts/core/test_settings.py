"""The pipeline's settings: what is read from the environment, and what tools get to see."""

from __future__ import annotations

import platform
import sysconfig

import pytest

from scripts.core.errors import ParamError
from scripts.core.settings import MINUTES, Settings, docker_arch

SECRETS = {
    "CLOUDFLARE_API_TOKEN": "cf-token-value",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
    "GITHUB_TOKEN": "ghp_value",
    "DOCKER_PASSWORD": "hunter2",
}


def test_defaults_from_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings.image_name == "zeroport"
    assert settings.base_image == "debian:trixie-slim"
    assert settings.docker_cli is None
    assert settings.ci is False
    assert settings.build_timeout == 20 * MINUTES
    assert settings.host_arch == docker_arch(platform.machine())
    assert settings.system == platform.system()


def test_every_setting_is_read() -> None:
    settings = Settings.from_env(
        {
            "ZEROPORT_IMAGE": "svc",
            "ZEROPORT_BASE_IMAGE": "debian@sha256:abc",
            "ZEROPORT_CA_BUNDLE": "/etc/corp-ca.pem",
            "ZEROPORT_DOCKER_CLI": "/usr/bin/docker",
            "ZEROPORT_BUILD_TIMEOUT": "90.5",
            "CI": "true",
            "CLOUDFLARE_API_TOKEN": "cf",
        }
    )
    assert settings.image_name == "svc"
    assert settings.base_image == "debian@sha256:abc"
    assert settings.ca_bundle == "/etc/corp-ca.pem"
    assert settings.docker_cli == "/usr/bin/docker"
    assert settings.build_timeout == 90.5
    assert settings.ci is True
    # The Cloudflare token belongs to tunnel/'s own settings and never reaches a tool.
    assert "CLOUDFLARE_API_TOKEN" not in settings.tool_env()


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("YES", True), ("0", False)])
def test_ci_flag(value: str, expected: bool) -> None:
    assert Settings.from_env({"CI": value}).ci is expected


def test_the_ca_bundle_falls_back_to_ssl_cert_file_and_can_be_switched_off() -> None:
    assert Settings.from_env({"SSL_CERT_FILE": "/x/ca.pem"}).ca_bundle == "/x/ca.pem"
    both = {"SSL_CERT_FILE": "/x/ca.pem", "ZEROPORT_CA_BUNDLE": "/y/ca.pem"}
    assert Settings.from_env(both).ca_bundle == "/y/ca.pem"
    off = {"SSL_CERT_FILE": "/x/ca.pem", "ZEROPORT_CA_BUNDLE": ""}
    assert Settings.from_env(off).ca_bundle is None


@pytest.mark.parametrize("value", ["ten minutes", "-60", "0"])
def test_a_build_timeout_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(ParamError) as caught:
        Settings.from_env({"ZEROPORT_BUILD_TIMEOUT": value})
    assert str(caught.value).startswith("ZEROPORT_BUILD_TIMEOUT must be a number of seconds")


OWN_SCRIPTS = sysconfig.get_path("scripts")


def test_a_secret_in_the_environment_never_reaches_a_tool() -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/home/u", "DOCKER_HOST": "unix:///d.sock", **SECRETS}
    settings = Settings.from_env(environ)
    env = settings.tool_env(EXTRA="1")
    assert env == {
        "PATH": f"/usr/bin:{OWN_SCRIPTS}",
        "HOME": "/home/u",
        "DOCKER_HOST": "unix:///d.sock",
        "EXTRA": "1",
    }
    assert not set(SECRETS.values()) & set(env.values())


def test_tool_env_extra_wins_and_does_not_change_the_settings() -> None:
    settings = Settings.from_env({"PATH": "/usr/bin"})
    assert settings.tool_env(PATH="/opt/bin")["PATH"] == "/opt/bin"
    assert settings.tool_env()["PATH"] == f"/usr/bin:{OWN_SCRIPTS}"


def test_the_projects_own_tools_are_found_last_on_path() -> None:
    # trivy, hadolint and the other auditors are installed beside this interpreter.
    assert Settings.from_env({"PATH": "/usr/bin"}).tool_env()["PATH"].split(":") == [
        "/usr/bin",
        OWN_SCRIPTS,
    ]
    already = Settings.from_env({"PATH": f"{OWN_SCRIPTS}:/usr/bin"}).tool_env()["PATH"]
    assert already == f"{OWN_SCRIPTS}:/usr/bin"


def test_the_api_token_is_never_in_the_repr() -> None:
    settings = Settings.from_env({"CLOUDFLARE_API_TOKEN": "cf-token-value"})
    assert "cf-token-value" not in repr(settings)


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("riscv64", "riscv64"),
    ],
)
def test_docker_arch(machine: str, arch: str) -> None:
    assert docker_arch(machine) == arch
