"""The compose stack: policy of the rendered config, deploys, failures, topology, restarts."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from docker import DockerClient

from scripts.core import engine, paths, proc
from scripts.core.errors import DeployError, PortInUse, Unhealthy
from scripts.core.options import Mode, StackOptions
from scripts.core.records import ImageRecord
from scripts.core.settings import Settings
from scripts.deploy import stack, tunnel_steps, verify
from scripts.scan import audit, auditors
from scripts.scan.findings import Severity
from tests.docker.conftest import free_port

#: The stand-in connector's health check: read the token as cloudflared would, reach the app.
STANDIN_CHECK = (
    "import os, urllib.request; "
    "assert open(os.environ['TUNNEL_TOKEN_FILE']).read(); "
    "urllib.request.urlopen('http://app:8080/healthz', timeout=2)"
)


def options(project: str, **overrides: Any) -> StackOptions:
    return StackOptions(project=project, port=free_port(), health_timeout=60, **overrides)


def render(settings: Settings, mode: Mode, token_file: Path) -> dict[str, Any]:
    chosen = StackOptions(mode=mode, token_file=token_file)
    return stack.render(settings, chosen, "zeroport:policy-test")


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    """A token file as ``doit tunnel`` leaves it: mode 0600, handed to cloudflared's user."""
    path = tmp_path / "tunnel-token"
    path.write_text("not-a-real-token")
    path.chmod(0o600)
    tunnel_steps.hand_over(path, stack.connector_user())
    return path


@pytest.mark.parametrize("mode", [Mode.LOCAL, Mode.TUNNEL])
def test_every_service_is_hardened_and_pinned(
    settings: Settings, mode: Mode, token_file: Path
) -> None:
    config = render(settings, mode, token_file)
    for name, service in config["services"].items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        uid = service["user"].split(":")[0]
        assert uid.isdigit(), name
        assert int(uid) != 0, name
        assert service["mem_limit"], name
        assert service["pids_limit"], name
        if name != "app":
            assert "@sha256:" in service["image"], f"{name} is not pinned by digest"


def test_local_mode_publishes_on_loopback_only(settings: Settings, token_file: Path) -> None:
    config = render(settings, Mode.LOCAL, token_file)
    ports = config["services"]["app"]["ports"]
    assert [p["host_ip"] for p in ports] == ["127.0.0.1"]
    assert "cloudflared" not in config["services"]


def test_tunnel_mode_publishes_nothing_and_keeps_app_off_the_egress_network(
    settings: Settings, token_file: Path
) -> None:
    config = render(settings, Mode.TUNNEL, token_file)
    for name, service in config["services"].items():
        assert not service.get("ports"), f"{name} publishes a port in tunnel mode"
    assert set(config["services"]["app"]["networks"]) == {"origin"}
    assert config["networks"]["origin"]["internal"] is True
    assert set(config["services"]["cloudflared"]["networks"]) == {"origin", "egress"}
    assert config["services"]["cloudflared"]["deploy"]["replicas"] == 2
    assert "TUNNEL_TOKEN" not in config["services"]["cloudflared"]["environment"]


def test_compose_lint_reports_no_high_finding(settings: Settings) -> None:
    files = sorted(paths.CONTAINERS.glob("compose*.yaml"))
    findings = auditors.compose_lint(files, env=audit.tool_env(settings), root=paths.ROOT)
    assert [f for f in findings if f.severity >= Severity.HIGH] == []


def test_local_deploy_answers_and_verifies_then_goes_away(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord, project: str
) -> None:
    chosen = options(project)
    record = stack.up(settings, docker_engine, chosen, built)
    assert record.url == f"http://127.0.0.1:{chosen.port}"
    with httpx.Client() as client:
        report = verify.verify_http(record.url, client, "test")
    assert report.passed, [c for c in report.checks if not c.ok]
    assert stack.running(docker_engine, record)
    stack.down(settings, docker_engine, chosen)
    assert not docker_engine.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )


def test_a_taken_port_stops_the_deploy_before_anything_starts(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord, project: str
) -> None:
    chosen = options(project)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", chosen.port))
        holder.listen()
        with pytest.raises(PortInUse, match=f"127.0.0.1:{chosen.port} is already in use"):
            stack.up(settings, docker_engine, chosen, built)
    assert not docker_engine.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )


def test_an_image_that_never_turns_healthy_leaves_the_running_release(
    settings: Settings,
    docker_engine: DockerClient,
    built: ImageRecord,
    broken: ImageRecord,
    project: str,
) -> None:
    chosen = options(project)
    first = stack.up(settings, docker_engine, chosen, built)
    before = {
        c.id
        for c in docker_engine.containers.list(
            filters={"label": f"com.docker.compose.project={project}"}
        )
    }
    with pytest.raises(Unhealthy, match="the running release was left as it was"):
        stack.up(settings, docker_engine, chosen, broken)
    after = {
        c.id
        for c in docker_engine.containers.list(
            filters={"label": f"com.docker.compose.project={project}"}
        )
    }
    assert after == before
    assert stack.running(docker_engine, first)
    assert httpx.get(f"{first.url}/", timeout=5).text == "Hello World"


def test_tunnel_mode_without_a_token_file_says_where_it_is_expected(
    settings: Settings,
    docker_engine: DockerClient,
    built: ImageRecord,
    project: str,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-token"
    chosen = options(project, mode=Mode.TUNNEL, token_file=missing)
    with pytest.raises(DeployError, match=str(missing)):
        stack.up(settings, docker_engine, chosen, built)


def test_killed_app_process_is_healthy_again_within_5_s(
    settings: Settings, docker_engine: DockerClient, built: ImageRecord, project: str
) -> None:
    chosen = options(project)
    stack.up(settings, docker_engine, chosen, built)
    (container,) = docker_engine.containers.list(
        filters={
            "label": [f"com.docker.compose.project={project}", "com.docker.compose.service=app"]
        }
    )
    processes = container.top(ps_args="-o pid,args")["Processes"]
    python_pid = next(int(pid) for pid, args in processes if "python3" in args and "-m app" in args)
    os.kill(python_pid, signal.SIGKILL)  # the service process of the container this test started
    killed = time.monotonic()
    deadline = killed + 30
    state = ""
    while time.monotonic() < deadline:
        container.reload()
        state = (container.attrs["State"].get("Health") or {}).get("Status", "")
        if container.attrs["RestartCount"] >= 1 and state == "healthy":
            break
        time.sleep(0.1)
    recovered = time.monotonic() - killed
    assert container.attrs["RestartCount"] >= 1
    assert state == "healthy"
    assert recovered <= 5.0, f"healthy again after {recovered:.1f} s"


def test_tunnel_topology_connector_reaches_app_by_name_and_app_reaches_nothing(
    settings: Settings,
    docker_engine: DockerClient,
    built: ImageRecord,
    project: str,
    token_file: Path,
    tmp_path: Path,
) -> None:
    # cloudflared cannot reach Cloudflare from here, so a stand-in built from the project's own
    # image takes its place on the same networks, as the same user; its health check reads the
    # token secret and requests the app by service name, so "healthy" proves both work.
    standin = {
        "services": {
            "cloudflared": {
                "image": built.tag,
                "pull_policy": "never",
                "entrypoint": ["/usr/bin/python3", "-m", "app"],
                "command": [],
                "environment": {"TUNNEL_TOKEN_FILE": "/run/secrets/tunnel_token"},
                "healthcheck": {
                    "test": ["CMD", "/usr/bin/python3", "-c", STANDIN_CHECK],
                    "interval": "2s",
                    "timeout": "2s",
                    "retries": 3,
                    "start_period": "5s",
                },
            }
        }
    }
    override = tmp_path / "compose.standin.yaml"
    override.write_text(yaml.safe_dump(standin))
    chosen = options(project, mode=Mode.TUNNEL, token_file=token_file)
    argv = [*stack.compose_argv(settings, chosen), "--file", str(override)]
    env = stack.compose_env(settings, chosen, built.tag)
    proc.run([*argv, "up", "--detach", "--wait", "--wait-timeout", "90"], env=env, timeout=180)

    by_service: dict[str, list[Any]] = {}
    for container in docker_engine.containers.list(
        filters={"label": f"com.docker.compose.project={project}"}
    ):
        by_service.setdefault(container.labels["com.docker.compose.service"], []).append(container)
    assert len(by_service["cloudflared"]) == 2
    for connector in by_service["cloudflared"]:
        connector.reload()
        assert connector.attrs["State"]["Health"]["Status"] == "healthy"

    # Nothing on the host listens for the app: no container of the stack has a host port, and
    # (Linux) no listening socket on the host is a docker-proxy forwarding to the app.
    for containers in by_service.values():
        for container in containers:
            assert not any((container.attrs["NetworkSettings"]["Ports"] or {}).values())
    (app,) = by_service["app"]
    app_ips = {n["IPAddress"] for n in app.attrs["NetworkSettings"]["Networks"].values()}
    if settings.system == "Linux":
        listening = proc.run(["ss", "-ltnpH"], env=settings.tool_env(), timeout=10).stdout
        assert "LISTEN" in listening
        for pid in re.findall(r'"docker-proxy",pid=(\d+)', listening):
            forwards = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert not app_ips & {arg.decode() for arg in forwards}, "a host port leads to app"

    # A sentinel on the egress network: the connector reaches it, the app does not.
    sentinel_name = f"{project}-sentinel"
    sentinel = docker_engine.containers.run(
        built.tag,
        detach=True,
        name=sentinel_name,
        network=f"{project}_egress",
        read_only=True,
        user="1000:1000",
    )
    try:
        engine.wait_healthy(docker_engine, str(sentinel.id), 60)
        sentinel.reload()
        sentinel_ip = sentinel.attrs["NetworkSettings"]["Networks"][f"{project}_egress"][
            "IPAddress"
        ]
        probe = ["/usr/bin/python3", "-m", "app.healthcheck"]
        reach = by_service["cloudflared"][0].exec_run(
            [*probe, f"http://{sentinel_name}:8080/healthz"]
        )
        assert reach.exit_code == 0, reach.output
        for target in (sentinel_name, sentinel_ip):
            blocked = app.exec_run([*probe, f"http://{target}:8080/healthz"])
            assert blocked.exit_code == 1, f"app reached {target}: {blocked.output!r}"
    finally:
        sentinel.remove(force=True)
