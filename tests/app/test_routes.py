"""The routes: hello, liveness, readiness, and the plain error pages."""

from __future__ import annotations

import io

from quart import Response

from app.config import Settings
from app.routes import describe
from tests.app.support import LOCAL, log_entries, make_service, parse_response, running_service


async def test_root_says_hello_in_plain_text() -> None:
    service, _ = make_service()

    response = await service.test_client().get("/")

    assert response.status_code == 200
    assert await response.get_data() == b"Hello World"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_healthz_answers_while_the_process_runs() -> None:
    service, _ = make_service()

    response = await service.test_client().get("/healthz")

    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_readyz_follows_the_lifecycle() -> None:
    service, _ = make_service()
    client = service.test_client()

    before = await client.get("/readyz")
    async with service.test_app():
        during = await client.get("/readyz")
        service.lifecycle.stopping()
        after = await client.get("/readyz")

    assert (before.status_code, await before.get_json()) == (503, {"status": "starting"})
    assert (during.status_code, await during.get_json()) == (200, {"status": "ready"})
    assert (after.status_code, await after.get_json()) == (503, {"status": "stopping"})


async def test_head_works_wherever_get_does_and_sends_no_body() -> None:
    async with running_service() as running:
        for path in ("/", "/healthz", "/readyz"):
            raw = await running.exchange(
                f"HEAD {path} HTTP/1.1\r\nHost: {LOCAL}\r\nConnection: close\r\n\r\n".encode()
            )
            response = parse_response(raw)
            assert response.status == 200, path
            assert response.body == b"", path
            assert response.header("content-length") != "0", path


async def test_unknown_paths_are_404_in_plain_text() -> None:
    service, _ = make_service()

    response = await service.test_client().get("/wp-admin")

    assert response.status_code == 404
    assert await response.get_data() == b"404 Not Found\n"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_wrong_methods_and_trace_are_405_with_allow() -> None:
    service, _ = make_service()
    client = service.test_client()

    for method in ("POST", "PUT", "DELETE", "TRACE"):
        response = await client.open("/", method=method)
        assert response.status_code == 405, method
        assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}
        assert await response.get_data() == b"405 Method Not Allowed\n"


async def test_a_failing_handler_is_a_generic_500_and_a_logged_traceback(
    json_logs: io.StringIO,
) -> None:
    service, _ = make_service()

    async def broken() -> str:
        raise RuntimeError("secret detail in /srv/app.py")

    service.add_url_rule("/broken", "broken", broken)

    response = await service.test_client().get("/broken")

    body = await response.get_data()
    assert response.status_code == 500
    assert body == b"500 Internal Server Error\n"
    assert response.headers["X-Frame-Options"] == "DENY"
    (entry,) = [e for e in log_entries(json_logs) if e["level"] == "error"]
    assert entry["message"] == "Exception on request GET /broken"  # Quart's own words
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" in entry["error"]
    assert "secret detail" in entry["error"]


async def test_crlf_in_the_path_never_reaches_a_response_header() -> None:
    settings = Settings(host=LOCAL, port=0)
    async with running_service(settings) as running:
        raw = await running.exchange(
            f"GET /missing%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: {LOCAL}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        response = parse_response(raw)

        assert response.status == 404
        assert response.header("set-cookie") is None
        assert (await running.get("/healthz")).status == 200


def test_describe_names_each_rule_with_its_methods() -> None:
    service, _ = make_service()

    async def item(number: int) -> Response:
        return Response(str(number))

    async def socket() -> None:
        return None

    service.add_url_rule("/items/<int:number>", "item", item, methods=["GET", "DELETE"])
    service.add_websocket("/ws", "ws", socket)

    assert describe(service) == [
        "GET,HEAD,OPTIONS /",
        "GET,HEAD,OPTIONS /healthz",
        "DELETE,GET,HEAD,OPTIONS /items/<int:number>",
        "GET,HEAD,OPTIONS /readyz",
        "WEBSOCKET /ws",
    ]
