"""``gateway.http.read_params`` and the request body: an HTTP/1.x request that announces no
body (neither Content-Length nor Transfer-Encoding) is not waited for; any other is read."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from gateway.http import read_params

pytestmark = pytest.mark.anyio


def _request(headers: list[tuple[bytes, bytes]], body: bytes, version: str) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            raise AssertionError("the body was read twice")
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"a=1",
        "headers": headers, "http_version": version,
    }  # fmt: skip
    request = Request(scope, receive)
    request.state.sent = lambda: sent
    return request


async def _read(request: Request) -> dict[str, Any]:
    return (await read_params(request, max_json=1000, max_files=1)).values


async def test_an_unframed_http1_request_is_not_read() -> None:
    for version in ("1.1", "1.0"):
        request = _request([(b"content-type", b"application/json")], b"", version)
        assert await _read(request) == {"a": "1"}
        assert not request.state.sent()


async def test_a_framed_body_is_read_and_merged() -> None:
    json = (b"content-type", b"application/json")
    for framing in [(b"content-length", b"7"), (b"transfer-encoding", b"chunked")]:
        request = _request([json, framing], b'{"b":2}', "1.1")
        assert await _read(request) == {"a": "1", "b": 2}
        assert request.state.sent()


async def test_other_versions_are_always_read() -> None:
    """HTTP/2 frames a body without either header."""
    request = _request([(b"content-type", b"application/json")], b'{"b":2}', "2")
    assert await _read(request) == {"a": "1", "b": 2}


async def test_the_first_content_type_counts() -> None:
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-type", b"application/json"), (b"content-length", b"3"),
    ]  # fmt: skip
    assert await _read(_request(headers, b"c=3", "1.1")) == {"a": "1", "c": "3"}
