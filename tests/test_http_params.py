"""``gateway.http.read_params`` and the request body: an HTTP/1.x request that announces no
body (neither Content-Length nor Transfer-Encoding) is not waited for; any other is read."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from starlette.requests import Request

from gateway.errors import ValidationFailed
from gateway.http import Params, _has_int, read_params

pytestmark = pytest.mark.anyio


def _request(
    headers: list[tuple[bytes, bytes]], body: bytes, version: str, query: bytes = b"a=1"
) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            raise AssertionError("the body was read twice")
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": query,
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


async def test_a_bare_get_is_an_empty_bag_read_from_nothing() -> None:
    """No query and no framed body (a widget's GET): an empty bag, nothing read or parsed,
    whatever Content-Type the request names."""
    for content_type in (None, b"application/json", b"multipart/form-data; boundary=x"):
        headers = [] if content_type is None else [(b"content-type", content_type)]
        request = _request(headers, b"", "1.1", query=b"")
        got = await read_params(request, max_json=1000, max_files=1)
        assert (got.values, got.files, request.state.sent()) == ({}, [], False)


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


class _Leaf(msgspec.Struct):
    n: int


class _Tree(msgspec.Struct):
    children: list[_Tree] | None = None
    note: str | None = None


class _Text(msgspec.Struct):
    content: str | None = None
    attributes: dict[str, Any] | None = None
    tags: list[str] = []


@pytest.mark.parametrize(
    ("struct", "expected"),
    [
        (_Leaf, True),
        (_Text, False),
        (_Tree, False),  # recursive, and no int anywhere
        (msgspec.defstruct("Opt", [("x", "int | None")]), True),
        (msgspec.defstruct("Deep", [("x", dict[str, list[tuple[str, _Leaf]]])]), True),
        (msgspec.defstruct("Keys", [("x", dict[int, str])]), True),
        (msgspec.defstruct("Floaty", [("x", float)]), False),
    ],
)
def test_an_int_is_found_wherever_it_can_sit(struct: type, expected: bool) -> None:
    assert _has_int(struct) is expected


def test_a_lenient_int_past_64_bits_is_still_refused_by_name() -> None:
    """The one thing lenient conversion can break: a numeric string into an int field."""
    with pytest.raises(ValidationFailed) as raised:
        Params({"n": "99999999999999999999"}, []).to(_Leaf)
    assert raised.value.attributes == ["n"]
    assert Params({"n": "12"}, []).to(_Leaf) == _Leaf(n=12)
