"""JSON logs: one line per request, JSON for everything else, cheap enough not to matter."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.logging import CLIENT_CLOSED, AccessLog, AccessLogWriter, JSONFormatter
from app.typing import REQUEST_ID_KEY, Receive, Scope, Send
from tests.app.support import access_lines, call, http_scope, log_entries, make_service

ACCESS_KEYS = {
    "time",
    "level",
    "logger",
    "method",
    "path",
    "status",
    "bytes",
    "duration_ms",
    "request_id",
    "client_ip",
}


class CountingStream(io.StringIO):
    """A text stream that counts how often it is written to."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def write_one(writer: AccessLogWriter, path: str = "/", client_ip: str | None = "1.2.3.4") -> None:
    writer.write(
        method="GET",
        path=path,
        status=200,
        sent=11,
        duration=0.0012345,
        request_id="abc",
        client_ip=client_ip,
    )


async def test_an_access_line_has_every_field() -> None:
    stream = io.StringIO()
    writer = AccessLogWriter(stream)

    write_one(writer)
    await asyncio.sleep(0)

    (line,) = access_lines(stream)
    assert set(line) == ACCESS_KEYS
    assert line["logger"] == "app.access"
    assert (line["method"], line["path"], line["status"], line["bytes"]) == ("GET", "/", 200, 11)
    assert line["duration_ms"] == pytest.approx(1.2345, abs=0.001)
    assert (line["request_id"], line["client_ip"]) == ("abc", "1.2.3.4")
    assert line["time"].endswith("Z")


async def test_lines_of_one_loop_turn_are_written_together() -> None:
    stream = CountingStream()
    writer = AccessLogWriter(stream)

    for _ in range(50):
        write_one(writer)
    assert stream.writes == 0  # nothing until the loop turn ends
    await asyncio.sleep(0)

    assert stream.writes == 1
    assert len(access_lines(stream)) == 50


def test_without_a_loop_a_line_is_written_at_once() -> None:
    stream = io.StringIO()

    write_one(AccessLogWriter(stream), client_ip=None)

    assert access_lines(stream)[0]["client_ip"] is None


async def test_a_closed_stdout_loses_lines_but_not_requests() -> None:
    stream = io.StringIO()
    writer = AccessLogWriter(stream)
    stream.close()

    write_one(writer)
    await asyncio.sleep(0)
    writer.flush()  # nothing raised


@given(path=st.text(max_size=50), client=st.text(max_size=20))
def test_no_path_or_client_can_break_the_json(path: str, client: str) -> None:
    stream = io.StringIO()

    write_one(AccessLogWriter(stream), path=path, client_ip=client)

    (line,) = stream.getvalue().splitlines()
    parsed = json.loads(line)
    assert (parsed["path"], parsed["client_ip"]) == (path, client)


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"de"})


async def test_the_middleware_logs_status_bytes_id_and_client() -> None:
    stream = io.StringIO()
    scope = http_scope("/x", method="PUT")
    scope[REQUEST_ID_KEY] = "req-1"

    await call(AccessLog(answer, AccessLogWriter(stream)), scope)

    (line,) = access_lines(stream)
    assert (line["method"], line["path"], line["status"], line["bytes"]) == ("PUT", "/x", 201, 5)
    assert (line["request_id"], line["client_ip"]) == ("req-1", "198.51.100.7")


async def test_head_responses_count_no_bytes() -> None:
    stream = io.StringIO()

    await call(AccessLog(answer, AccessLogWriter(stream)), http_scope(method="HEAD"))

    assert access_lines(stream)[0]["bytes"] == 0


async def test_an_app_that_raises_is_logged_as_500() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    stream = io.StringIO()
    with pytest.raises(RuntimeError):
        await call(AccessLog(broken, AccessLogWriter(stream)), http_scope())
    await asyncio.sleep(0)

    assert access_lines(stream)[0]["status"] == 500


async def test_a_request_cancelled_before_answering_is_logged_as_499() -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(60)

    stream = io.StringIO()
    task = asyncio.create_task(call(AccessLog(slow, AccessLogWriter(stream)), http_scope()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)

    assert access_lines(stream)[0]["status"] == CLIENT_CLOSED


async def test_the_service_logs_one_line_per_request() -> None:
    service, log = make_service()
    client = service.test_client()

    await client.get("/")
    await client.get("/missing")
    await asyncio.sleep(0)

    lines = access_lines(log)
    assert [(line["path"], line["status"]) for line in lines] == [("/", 200), ("/missing", 404)]


def test_the_formatter_writes_one_json_object_with_extras_and_traceback() -> None:
    formatter = JSONFormatter()
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("app.test").makeRecord(
            "app.test",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("x",),
            exc_info=sys.exc_info(),
            extra={"port": 8080},
        )

    entry = json.loads(formatter.format(record))

    assert (entry["level"], entry["logger"], entry["message"]) == ("error", "app.test", "failed x")
    assert entry["port"] == 8080
    assert "ValueError: bad" in entry["error"]
    assert "\n" not in formatter.format(record)


def test_configure_sends_every_logger_through_the_formatter(json_logs: io.StringIO) -> None:
    logging.getLogger("quart.app").info("from quart")
    logging.getLogger("hypercorn.error").info("Running on http://0.0.0.0:8080")
    logging.getLogger("hypercorn.error").error("Error in ASGI Framework")

    entries = log_entries(json_logs)

    assert [(e["logger"], e["message"]) for e in entries] == [
        ("quart.app", "from quart"),
        ("hypercorn.error", "Error in ASGI Framework"),  # its start-up chatter is muted
    ]
