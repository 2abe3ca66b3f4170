"""The hostile requests: enough distinct cases, covering the issue, at the limits they name."""

from __future__ import annotations

from scripts.security.cases import cases


def test_there_are_at_least_25_distinct_cases_covering_the_issue() -> None:
    every = cases("127.0.0.1:8080")
    ids = [case.id for case in every]
    assert len(every) >= 25
    assert len(set(ids)) == len(ids)
    for needed in (
        "TRAVERSAL-PLAIN",
        "TRAVERSAL-ENCODED",
        "TRAVERSAL-DOUBLE-ENCODED",
        "TRAVERSAL-OVERLONG-UTF8",
        "TRAVERSAL-BACKSLASH",
        "CRLF-IN-PATH",
        "HOST-HOSTILE",
        "ABSOLUTE-URI",
        "OVERSIZED-HEADER",
        "OVERSIZED-BODY",
        "MANY-HEADERS",
        "INVALID-METHOD",
        "TRACE",
        "CONNECT",
        "SMUGGLE-CL-TE",
        "SMUGGLE-TE-TE",
        "SMUGGLE-DUPLICATE-CL",
        "INVALID-CHUNK-SIZE",
        "HTTP10-NO-HOST",
        "NUL-IN-PATH",
    ):
        assert needed in ids
    assert all(case.expect and 200 not in case.expect for case in every if "TRAVERSAL" in case.id)


def test_each_family_of_cases_expects_what_its_table_says() -> None:
    by_id = {case.id: case for case in cases("h")}
    assert by_id["TRAVERSAL-ENCODED"].expect == frozenset({400, 404})
    assert by_id["TRAVERSAL-ENCODED"].payload.startswith(b"GET /%2e%2e%2f")
    assert by_id["NUL-IN-HEADER"].expect == frozenset({400})
    assert by_id["SMUGGLE-TE-TE"].expect == frozenset({400, 405, 501})
    assert b"GET /smuggled HTTP/1.1" in by_id["SMUGGLE-CL-TE"].payload
    assert [case.id for case in by_id.values() if case.closed_ok] == ["HUGE-CHUNK-SIZE"]


def test_oversized_cases_exceed_the_limits_they_name() -> None:
    by_id = {case.id: case for case in cases("h", max_body=1024, max_header=512)}
    assert len(by_id["OVERSIZED-BODY"].payload) > 2048
    assert len(by_id["OVERSIZED-HEADER"].payload) > 1024
    assert by_id["MANY-HEADERS"].payload.count(b"\r\nX-H") >= 32
