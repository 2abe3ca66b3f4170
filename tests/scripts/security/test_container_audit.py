"""The container audit's checks on planted engine data: image configs, file lists, inspect
documents. The good ones are shaped like the project's image and compose stack; each bad one
breaks one rule and must fail exactly the matching check."""

from __future__ import annotations

import copy
import stat
from typing import Any

import pytest

from scripts.security.container_audit import (
    ExpectedPorts,
    FileEntry,
    SecretHit,
    container_checks,
    filesystem_checks,
    image_config_checks,
    layer_secrets_check,
    stray_ports,
)

LOCAL = ExpectedPorts(published={"8080/tcp": frozenset({"127.0.0.1"})})
GOOD_CONFIG: dict[str, Any] = {
    "User": "1000:1000",
    "ExposedPorts": {"8080/tcp": {}},
    "Env": ["PATH=/usr/bin", "PYTHONPATH=/opt/app", "LANG=C.UTF-8"],
    "Entrypoint": ["/usr/bin/python3", "-m", "app"],
    "Labels": {"org.opencontainers.image.title": "zeroport"},
    "Healthcheck": {"Test": ["CMD", "/usr/bin/python3", "-m", "app.healthcheck"]},
}
GOOD_FILES = [
    FileEntry(path="usr/bin/python3", kind="symlink", mode=0o777),
    FileEntry(path="usr/bin/python3.13", mode=0o755),
    FileEntry(path="usr/lib/python313.zip", members=("os.pyc", "json/__init__.pyc")),
    FileEntry(path="opt/app/app/__main__.pyc"),
    FileEntry(path="var/lib/dpkg/status.d/libc6"),  # package metadata, not a package manager
]
GOOD_CONTAINER: dict[str, Any] = {
    "Name": "/zeroport-app-1",
    "Config": {
        "User": "1000:1000",
        "Env": ["APP_PROXY_HOPS=0", "TUNNEL_TOKEN_FILE=/run/secrets/tunnel_token"],
        "Healthcheck": {"Test": ["CMD", "/usr/bin/python3", "-m", "app.healthcheck"]},
    },
    "HostConfig": {
        "ReadonlyRootfs": True,
        "CapDrop": ["ALL"],
        "CapAdd": None,
        "SecurityOpt": ["no-new-privileges:true"],
        "Memory": 134217728,
        "PidsLimit": 64,
        "Privileged": False,
        "NetworkMode": "zeroport_local",
        "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
    },
    "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}},
    "State": {"Health": {"Status": "healthy"}},
    "Mounts": [],
}


def failing(checks: list[Any]) -> list[str]:
    return [check.id.split("[")[0] for check in checks if not check.ok]


def test_the_projects_image_config_passes() -> None:
    assert failing(image_config_checks(GOOD_CONFIG, ["ENTRYPOINT [...]"], LOCAL)) == []


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"User": ""}, "IMG-USER"),
        ({"User": "0:0"}, "IMG-USER"),
        ({"User": "root"}, "IMG-USER"),
        ({"Healthcheck": None}, "IMG-HEALTHCHECK"),
        ({"Healthcheck": {"Test": ["NONE"]}}, "IMG-HEALTHCHECK"),
        ({"ExposedPorts": {"8080/tcp": {}, "22/tcp": {}}}, "IMG-PORTS"),
        ({"Env": ["PATH=/usr/bin", "DB_PASSWORD=hunter2"]}, "IMG-SECRETS-CONFIG"),
        ({"Labels": {"deploy.token": "abc123"}}, "IMG-SECRETS-CONFIG"),
        ({"Entrypoint": ["/app", "--password=hunter2"]}, "IMG-SECRETS-CONFIG"),
    ],
)
def test_each_bad_image_config_fails_its_check(change: dict[str, Any], check: str) -> None:
    assert failing(image_config_checks(GOOD_CONFIG | change, [], LOCAL)) == [check]


def test_a_secret_in_the_build_history_fails_and_is_not_repeated() -> None:
    checks = image_config_checks(GOOD_CONFIG, ["|1 API_KEY=s3cr3t-value /bin/sh -c make"], LOCAL)
    secrets = next(c for c in checks if c.id == "IMG-SECRETS-CONFIG")
    assert not secrets.ok
    assert "history[0]" in secrets.evidence
    assert "s3cr3t-value" not in secrets.evidence


def test_the_projects_filesystem_passes() -> None:
    assert failing(filesystem_checks(GOOD_FILES)) == []


@pytest.mark.parametrize(
    ("planted", "check"),
    [
        (FileEntry(path="bin/sh", kind="symlink"), "IMG-NO-SHELL"),
        (FileEntry(path="usr/bin/bash", mode=0o755), "IMG-NO-SHELL"),
        (FileEntry(path="bin/busybox", mode=0o755), "IMG-NO-SHELL"),
        (FileEntry(path="usr/bin/apt-get", mode=0o755), "IMG-NO-PACKAGE-MANAGER"),
        (FileEntry(path="usr/bin/dpkg", mode=0o755), "IMG-NO-PACKAGE-MANAGER"),
        (FileEntry(path="usr/local/bin/pip3.13", mode=0o755), "IMG-NO-PACKAGE-MANAGER"),
        (
            FileEntry(path="usr/lib/python3/dist-packages/pip/__main__.py"),
            "IMG-NO-PACKAGE-MANAGER",
        ),
        (
            FileEntry(path="opt/app/site.zip", members=("pip/__init__.py", "pip/__main__.py")),
            "IMG-NO-PACKAGE-MANAGER",
        ),
        (
            FileEntry(path="usr/lib/python313.zip", members=("ensurepip/_bundled/pip-24.whl",)),
            "IMG-NO-PACKAGE-MANAGER",
        ),
        (FileEntry(path="usr/bin/passwd", mode=0o4755), "IMG-NO-SETUID"),
        (FileEntry(path="usr/bin/wall", mode=0o2755), "IMG-NO-SETUID"),
    ],
)
def test_each_planted_file_fails_its_check(planted: FileEntry, check: str) -> None:
    checks = filesystem_checks([*GOOD_FILES, planted])
    assert failing(checks) == [check]
    assert "/" + planted.path in next(c.evidence for c in checks if c.id == check)


def test_a_setuid_directory_or_a_shell_named_directory_is_not_a_finding() -> None:
    odd = [
        FileEntry(path="tmp", kind="dir", mode=0o1777 | stat.S_ISGID),
        FileEntry(path="opt/sh", kind="dir"),
    ]
    assert failing(filesystem_checks(odd)) == []


def test_layer_secrets_name_the_layer_and_file() -> None:
    clean = layer_secrets_check([], 3)
    assert clean.ok
    assert clean.evidence == "3 layers read, none found"
    hit = SecretHit(layer="3ece44097e03616ac0f2", path="root/.aws/credentials", kind="AWS")
    found = layer_secrets_check([hit], 4)
    assert not found.ok
    assert found.evidence == "layer 3ece44097e03: /root/.aws/credentials (AWS)"


def test_the_stacks_container_passes() -> None:
    assert failing(container_checks(GOOD_CONTAINER, LOCAL)) == []


def bad(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    planted = copy.deepcopy(GOOD_CONTAINER)
    target = planted
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return planted


@pytest.mark.parametrize(
    ("planted", "check"),
    [
        (bad(("Config", "User"), ""), "CTR-USER"),
        (bad(("HostConfig", "ReadonlyRootfs"), False), "CTR-READ-ONLY"),
        (bad(("HostConfig", "CapDrop"), ["NET_RAW"]), "CTR-CAP-DROP-ALL"),
        (bad(("HostConfig", "CapAdd"), ["NET_ADMIN"]), "CTR-CAP-DROP-ALL"),
        (bad(("HostConfig", "SecurityOpt"), None), "CTR-NO-NEW-PRIVILEGES"),
        (bad(("State", "Health"), {"Status": "unhealthy"}), "CTR-HEALTHY"),
        (bad(("Config", "Healthcheck"), None), "CTR-HEALTHY"),
        (bad(("HostConfig", "Memory"), 0), "CTR-MEMORY-LIMIT"),
        (bad(("HostConfig", "PidsLimit"), None), "CTR-PIDS-LIMIT"),
        (bad(("HostConfig", "Privileged"), True), "CTR-NO-HOST-ACCESS"),
        (bad(("HostConfig", "NetworkMode"), "host"), "CTR-NO-HOST-ACCESS"),
        (
            bad(("Mounts",), [{"Source": "/var/run/docker.sock", "Destination": "/s"}]),
            "CTR-NO-HOST-ACCESS",
        ),
        (
            bad(
                ("NetworkSettings", "Ports"),
                {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},  # noqa: S104
            ),
            "CTR-PORTS",
        ),
        (bad(("Config", "Env"), ["CLOUDFLARE_API_TOKEN=abc"]), "CTR-SECRETS-ENV"),
    ],
)
def test_each_bad_container_fails_its_check(planted: dict[str, Any], check: str) -> None:
    checks = container_checks(planted, LOCAL)
    assert failing(checks) == [check]
    assert all(c.id.endswith("[zeroport-app-1]") for c in checks)


def test_ports_in_tunnel_mode_must_be_none_at_all() -> None:
    assert stray_ports(GOOD_CONTAINER, ExpectedPorts()) == ["127.0.0.1:8080->8080/tcp"]
    assert stray_ports(GOOD_CONTAINER, LOCAL) == []
    unpublished = bad(("NetworkSettings", "Ports"), {"8080/tcp": None})
    unpublished["HostConfig"]["PortBindings"] = {}
    assert stray_ports(unpublished, ExpectedPorts()) == []
