"""Bringing a stack up: the compose command line, its environment, and the preflight checks.

The Docker engine is a small fake holding the few methods ``preflight`` calls; ``docker
compose config`` is answered from the recorded output in ``fixtures/compose``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import docker.errors
import pytest

from scripts.core import engine, paths
from scripts.core.errors import DeployError, PortInUse, ReportError
from scripts.core.options import StackOptions
from scripts.core.records import StackRecord
from scripts.core.settings import Settings
from scripts.deploy import stack
from scripts.deploy.stack import compose_argv, compose_env, preflight
from tests.scripts.conftest import stack_record

FIXTURES = Path(__file__).parents[1] / "fixtures" / "compose"
IMAGE_ID = "sha256:" + "9" * 64
CLOUDFLARED = json.loads((FIXTURES / "tunnel.json").read_text())["services"]["cloudflared"]["image"]


class Image:
    tag = "zeroport:0123456789ab"
    id = IMAGE_ID


class FakeImages:
    def __init__(self, present: set[str], pullable: bool = False) -> None:
        self.present = present
        self.pullable = pullable
        self.pulled: list[str] = []

    def get(self, name: str) -> object:
        if name not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return object()

    def pull(self, name: str) -> object:
        if not self.pullable:
            raise docker.errors.APIError("Get https://registry-1.docker.io/v2/: dial tcp: timeout")
        self.pulled.append(name)
        return object()


class FakeContainer:
    def __init__(self, ports: dict[str, Any]) -> None:
        self.attrs = {"NetworkSettings": {"Ports": ports}}


class FakeContainers:
    def __init__(self, running: list[FakeContainer]) -> None:
        self.running = running
        self.filters: list[dict[str, str]] = []

    def list(self, filters: dict[str, str]) -> list[FakeContainer]:
        self.filters.append(filters)
        return self.running


class FakeEngine:
    def __init__(
        self,
        images: set[str] | None = None,
        containers: list[FakeContainer] | None = None,
        pullable: bool = False,
    ) -> None:
        self.images = FakeImages({IMAGE_ID} if images is None else images, pullable)
        self.containers = FakeContainers(containers or [])


@pytest.fixture
def settings() -> Settings:
    return Settings(
        tool_environ=MappingProxyType({"PATH": "/usr/bin", "HOME": "/home/u"}),
    )


@pytest.fixture(autouse=True)
def compose_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "compose_cli", lambda settings: ("docker", "compose"))


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``docker compose config`` answered from the recorded tunnel-mode output."""
    calls: list[str] = []

    def fake_render(settings: Settings, options: StackOptions, image: str) -> dict[str, Any]:
        calls.append(image)
        data: dict[str, Any] = json.loads((FIXTURES / "tunnel.json").read_text())
        return data

    monkeypatch.setattr(stack, "render", fake_render)
    return calls


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield int(listener.getsockname()[1])


def test_compose_argv_names_the_project_and_the_files_of_the_mode(settings: Settings) -> None:
    local = compose_argv(settings, StackOptions(project="p1"))
    assert local == [
        "docker",
        "compose",
        "--project-name",
        "p1",
        "--file",
        str(paths.CONTAINERS / "compose.yaml"),
        "--file",
        str(paths.CONTAINERS / "compose.local.yaml"),
    ]
    tunnel = compose_argv(settings, StackOptions.from_vars({"mode": "tunnel"}))
    assert tunnel[-1] == str(paths.CONTAINERS / "compose.tunnel.yaml")


def test_compose_env_sets_what_the_files_interpolate_and_no_secret(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = StackOptions.from_vars(
        {"port": "9090", "project": "p1", "token_file": "secrets/token"}
    )
    env = compose_env(settings, options, "zeroport:abc")
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "APP_IMAGE": "zeroport:abc",
        "APP_PORT": "9090",
        "COMPOSE_PROJECT_NAME": "p1",
        "TUNNEL_TOKEN_FILE": str(tmp_path / "secrets" / "token"),
    }


def test_an_image_the_engine_does_not_have_stops_the_deploy(settings: Settings) -> None:
    with pytest.raises(DeployError, match=r"image zeroport:0123456789ab \(sha256:9999"):
        preflight(settings, FakeEngine(images=set()), StackOptions(), Image())  # type: ignore[arg-type]


def test_tunnel_mode_without_the_token_file_names_the_file(
    settings: Settings, tmp_path: Path, rendered: list[str]
) -> None:
    token = tmp_path / "secrets" / "tunnel-token"
    options = StackOptions.from_vars({"mode": "tunnel", "token_file": str(token)})
    with pytest.raises(DeployError) as caught:
        preflight(settings, FakeEngine(), options, Image())  # type: ignore[arg-type]
    message = str(caught.value)
    assert str(token) in message
    assert "doit tunnel" in message
    assert rendered == []  # stopped before asking compose anything


def test_tunnel_mode_pulls_the_connector_image_when_it_is_missing(
    settings: Settings, tmp_path: Path, rendered: list[str]
) -> None:
    token = tmp_path / "tunnel-token"
    token.write_text("eyJ...")
    fake = FakeEngine(pullable=True)
    options = StackOptions.from_vars({"mode": "tunnel", "token_file": str(token)})
    preflight(settings, fake, options, Image())  # type: ignore[arg-type]
    assert rendered == [Image.tag]
    assert fake.images.pulled == [CLOUDFLARED]


def test_tunnel_mode_without_a_registry_names_the_connector_image(
    settings: Settings, tmp_path: Path, rendered: list[str]
) -> None:
    token = tmp_path / "tunnel-token"
    token.write_text("eyJ...")
    options = StackOptions.from_vars({"mode": "tunnel", "token_file": str(token)})
    with pytest.raises(DeployError) as caught:
        preflight(settings, FakeEngine(), options, Image())  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(f"{CLOUDFLARED} is not here and cannot be pulled")
    assert "docker load" in message


def test_a_taken_loopback_port_is_port_in_use(settings: Settings, taken_port: int) -> None:
    options = StackOptions.from_vars({"port": str(taken_port), "project": "p1"})
    fake = FakeEngine()
    with pytest.raises(PortInUse) as caught:
        preflight(settings, fake, options, Image())  # type: ignore[arg-type]
    assert caught.value.port == taken_port
    assert fake.containers.filters == [{"label": "com.docker.compose.project=p1"}]


def test_a_port_held_by_this_project_is_a_redeploy(settings: Settings, taken_port: int) -> None:
    ours = FakeContainer({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(taken_port)}]})
    options = StackOptions.from_vars({"port": str(taken_port), "project": "p1"})
    fake = FakeEngine(containers=[ours])
    preflight(settings, fake, options, Image())  # type: ignore[arg-type]
    assert fake.containers.filters == [{"label": "com.docker.compose.project=p1"}]


def test_a_project_container_on_another_port_does_not_excuse_a_taken_one(
    settings: Settings, taken_port: int
) -> None:
    other = FakeContainer({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "1"}], "9/tcp": None})
    options = StackOptions.from_vars({"port": str(taken_port), "project": "p1"})
    with pytest.raises(PortInUse):
        preflight(settings, FakeEngine(containers=[other]), options, Image())  # type: ignore[arg-type]


def test_swarm_publishes_no_loopback_port_so_the_port_is_not_checked(
    settings: Settings, taken_port: int
) -> None:
    options = StackOptions.from_vars({"port": str(taken_port), "target": "swarm"})
    fake = FakeEngine()
    preflight(settings, fake, options, Image())  # type: ignore[arg-type]
    assert fake.containers.filters == []


def test_stack_record_round_trips_and_a_missing_one_says_deploy(tmp_path: Path) -> None:
    record = stack_record(
        project="p1", mode="local", image_id=IMAGE_ID, url="http://127.0.0.1:8080"
    )
    record.write(tmp_path / "stack.json")
    assert StackRecord.read(tmp_path / "stack.json") == record
    with pytest.raises(ReportError, match="nothing is deployed; run: doit deploy"):
        StackRecord.read(tmp_path / "absent.json")


def test_a_token_file_is_readable_by_its_owner_group_or_anyone_as_its_mode_says(
    tmp_path: Path,
) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    owner = token.stat()
    token.chmod(0o600)
    assert stack.readable_by(token, f"{owner.st_uid}:{owner.st_gid}")
    assert not stack.readable_by(token, "65532:65532") or owner.st_uid == 65532
    token.chmod(0o604)
    assert stack.readable_by(token, "65532:65532")
    assert stack.readable_by(token, "0:0")


def test_the_tunnel_compose_file_names_cloudflareds_user() -> None:
    assert stack.connector_user() == "65532:65532"
