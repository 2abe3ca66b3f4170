"""``step``: how a doit action reports a pipeline error (one line) and a bug (a traceback)."""

from __future__ import annotations

import pytest
from doit.exceptions import TaskFailed

from scripts.core import cli
from scripts.core.errors import PortInUse, WorkflowError
from tunnel.errors import SettingsError


@pytest.fixture(autouse=True)
def logging_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep the terminal handler out of the test process's loggers.
    monkeypatch.setattr(cli, "_configured", True)


def test_success_is_none_and_arguments_pass_through() -> None:
    seen: list[tuple[object, ...]] = []

    @cli.step
    def action(a: int, *, b: str) -> None:
        seen.append((a, b))

    assert action(1, b="x") is None
    assert seen == [(1, "x")]
    assert action.__name__ == "action"


def test_a_workflow_error_is_a_task_failure_with_its_one_line() -> None:
    @cli.step
    def action() -> None:
        raise PortInUse("127.0.0.1", 8080)

    result = action()
    assert isinstance(result, TaskFailed)
    assert result.message == str(PortInUse("127.0.0.1", 8080))
    assert "127.0.0.1:8080 is already in use" in result.message


def test_a_tunnel_error_is_a_task_failure_too() -> None:
    @cli.step
    def action() -> None:
        raise SettingsError("CLOUDFLARE_API_TOKEN", "is not set", "export it")

    result = action()
    assert isinstance(result, TaskFailed)
    assert result.message == "CLOUDFLARE_API_TOKEN is not set; export it"


def test_any_other_exception_is_a_bug_and_keeps_its_traceback() -> None:
    @cli.step
    def action() -> None:
        raise KeyError("services")

    with pytest.raises(KeyError, match="services"):
        action()


def test_the_root_error_itself_is_caught() -> None:
    @cli.step
    def action() -> None:
        raise WorkflowError("plain")

    result = action()
    assert isinstance(result, TaskFailed)
    assert result.message == "plain"
