"""The bench's server containers, what needs no engine: arguments, limits, the fd limit."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import resource
from pathlib import Path

from app.config import Settings as AppSettings
from app.headers import security_headers
from scripts.bench import servers
from scripts.bench.report import MIB

COMPOSE_FIXTURES = Path(__file__).parents[1] / "fixtures" / "compose"
ROOT = Path(__file__).parents[3]


def test_server_containers_get_the_compose_files_limits_and_hardening() -> None:
    service = json.loads((COMPOSE_FIXTURES / "local.json").read_text())["services"]["app"]
    kwargs = servers.server_kwargs(service, image="zeroport:abc", run_id="r1")
    assert kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["user"] == "1000:1000"
    assert kwargs["init"] is True
    assert (kwargs["mem_limit"], kwargs["memswap_limit"]) == (384 * MIB, 384 * MIB)
    assert (kwargs["pids_limit"], kwargs["nano_cpus"]) == (64, 1_000_000_000)
    assert kwargs["environment"]["APP_LOG_LEVEL"] == "info"
    assert kwargs["log_config"]["Config"] == {"max-file": "3", "max-size": "10m"}
    assert kwargs["labels"] == {servers.LABEL: "r1"}
    assert servers.limits_of(service) == {"cpus": 1.0, "memory": 384 * MIB, "pids": 64}


def test_the_fd_limit_is_raised_within_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = min(hard, soft + 100) if hard != resource.RLIM_INFINITY else soft + 100
        assert servers.raise_fd_limit(wanted) == wanted
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == wanted
        if hard != resource.RLIM_INFINITY:
            assert servers.raise_fd_limit(hard + 1000) == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_stock_app_sends_the_same_security_headers_as_the_service() -> None:
    spec = importlib.util.spec_from_file_location(
        "stock_app", ROOT / "containers" / "stock" / "stock_app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.app

    async def fetch() -> dict[str, str]:
        response = await app.test_client().get("/")  # type: ignore[attr-defined]
        return {name.lower(): value for name, value in response.headers.items()}

    stock_headers = asyncio.run(fetch())

    for name, value in security_headers(AppSettings()):
        assert stock_headers[name.decode()] == value.decode(), name


def test_the_stock_server_runs_on_the_services_event_loop() -> None:
    calls: list[dict[str, object]] = []

    class Engine:
        class containers:
            @staticmethod
            def run(**kwargs: object) -> object:
                calls.append(kwargs)
                return object()

    spec = json.loads((COMPOSE_FIXTURES / "local.json").read_text())["services"]["app"]
    for loop in ("uvloop", ""):
        servers.start(
            Engine(),  # type: ignore[arg-type]
            "stock",
            service=spec,
            image="zeroport:abc",
            run_id="r1",
            network="n",
            port=18000,
            stock="zeroport-stock:x",
            loop=loop,
        )
    assert [call["command"] for call in calls] == [
        ["--worker-class", "uvloop", "stock_app:app"],
        ["--worker-class", "asyncio", "stock_app:app"],
    ]
    assert all(call["image"] == "zeroport-stock:x" for call in calls)


def test_the_service_reports_its_loop_in_its_first_line() -> None:
    class Box:
        @staticmethod
        def logs(**_: object) -> bytes:
            return (
                b'{"level":"info","message":"listening","loop":"uvloop","workers":1}\n'
                b'{"level":"info","logger":"app.access","status":200}\n'
            )

    assert servers.event_loop(Box()) == "uvloop"  # type: ignore[arg-type]
