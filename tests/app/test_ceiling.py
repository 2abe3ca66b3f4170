"""The ceiling: the same bytes and headers as the service's GET /, with no framework."""

from __future__ import annotations

import pytest

from app.ceiling import Ceiling, main
from app.config import Settings
from app.lifecycle import Lifecycle
from tests.app.support import LOCAL, call, http_scope, make_service, running_server

VARYING = {b"x-request-id", b"date"}


async def test_it_answers_exactly_like_the_services_root() -> None:
    settings = Settings()
    service, _ = make_service()

    ours = await call(service.stack, http_scope())
    ceiling = await call(Ceiling(settings), http_scope())

    assert (ceiling.status, ceiling.body) == (ours.status, ours.body)
    assert {(n, v) for n, v in ceiling.headers if n not in VARYING} == {
        (n, v) for n, v in ours.headers if n not in VARYING
    }
    assert ceiling.header(b"x-request-id") != ours.header(b"x-request-id")


async def test_it_runs_on_the_services_server_setup() -> None:
    settings = Settings(host=LOCAL, port=0)

    async with running_server(Ceiling(settings), settings, lifecycle=Lifecycle()) as running:
        response = await running.get("/")

    assert (response.status, response.body) == (200, b"Hello World")
    assert response.header("server") is None
    assert response.header("strict-transport-security") is not None


def test_a_bad_setting_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_PORT", "-1")

    assert main([]) == 2
    assert capsys.readouterr().err == "APP_PORT must be an integer 1-65535, got '-1'\n"
