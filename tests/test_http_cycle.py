"""A response of known length leaves in one write (``gateway/http_cycle.py``), and byte for
byte as uvicorn's own cycle writes it: same bytes, same errors, same connection state, for
any response an app may send."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.http_cycle import OneWriteCycle
from tests.server_helpers import GatewayProcess

LOG = logging.getLogger("tests.http_cycle")


class Transport:
    """What the cycle writes, and whether it closed the connection."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


SERVER_HEADERS = [(b"server", b"uvicorn"), (b"date", b"Fri, 04 Dec 2026 00:00:00 GMT")]


def cycle_of(
    kind: type[RequestResponseCycle], method: str, keep_alive: bool, defaults: list[Any]
) -> Any:
    transport = Transport()
    done: list[bool] = []
    cycle = kind(
        scope={"type": "http", "method": method, "path": "/"},  # type: ignore[typeddict-item]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=LOG, access_logger=LOG, access_log=False,
        default_headers=defaults,
        message_event=asyncio.Event(), expect_100_continue=False, keep_alive=keep_alive,
        on_response=lambda: done.append(True),
    )  # fmt: skip
    return cycle, transport, done


async def play(
    kind: type[RequestResponseCycle],
    method: str,
    keep_alive: bool,
    messages: list[Any],
    defaults: list[Any] = SERVER_HEADERS,
) -> tuple[Any, ...]:
    cycle, transport, done = cycle_of(kind, method, keep_alive, defaults)
    error = None
    for message in messages:
        try:
            await cycle.send(message)
        except RuntimeError as exc:
            error = str(exc)
            break
    state = (cycle.response_started, cycle.response_complete, cycle.keep_alive)
    return b"".join(transport.writes), error, transport.closed, state, bool(done), transport


HEADERS = st.sampled_from([
    (b"content-type", b"application/json; charset=utf-8"),
    (b"x-request-id", b"abc-123"),
    (b"Content-Type", b"text/plain"),
    (b"connection", b"close"),
    (b"connection", b"keep-alive"),
    (b"transfer-encoding", b"chunked"),
    (b"bad name", b"x"),
    (b"x-injected", b"a\r\nset-cookie: b"),
    (b"vary", b"Origin"),
])  # fmt: skip


@st.composite
def responses(draw: st.DrawFn) -> tuple[str, bool, list[Any], list[Any]]:
    body = draw(st.binary(max_size=40))
    headers = draw(st.lists(HEADERS, max_size=4))
    length = draw(st.sampled_from(["exact", "none", "short", "long"]))
    announced = {"exact": len(body), "short": max(0, len(body) - 1), "long": len(body) + 1}
    if length != "none":
        headers.insert(
            draw(st.integers(0, len(headers))), (b"content-length", b"%d" % announced[length])
        )
    status = draw(st.sampled_from([200, 201, 204, 304, 403, 404, 413, 500, 503]))
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    cut = draw(st.integers(0, len(body)))
    if draw(st.booleans()):
        bodies: list[dict[str, Any]] = [{"type": "http.response.body", "body": body}]
    else:  # streamed in two parts
        bodies = [
            {"type": "http.response.body", "body": body[:cut], "more_body": True},
            {"type": "http.response.body", "body": body[cut:]},
        ]
    messages = [start, *bodies]
    if draw(st.booleans()):
        messages.append({"type": "http.response.body", "body": b""})  # one too many
    method = draw(st.sampled_from(["GET", "POST", "HEAD"]))
    # The server's own headers (uvicorn's --header), refused too when one is invalid.
    defaults = draw(st.sampled_from([SERVER_HEADERS, [], [(b"X-Site", b"a\x01b")]]))
    return method, draw(st.booleans()), messages, list(defaults)


@settings(max_examples=400, deadline=None)
@given(responses())
def test_the_bytes_errors_and_state_are_uvicorns(
    case: tuple[str, bool, list[Any], list[Any]],
) -> None:
    method, keep_alive, messages, defaults = case
    ours = asyncio.run(play(OneWriteCycle, method, keep_alive, messages, defaults))
    theirs = asyncio.run(play(RequestResponseCycle, method, keep_alive, messages, defaults))
    assert ours[:5] == theirs[:5]


@pytest.mark.parametrize("keep_alive", [True, False])
def test_a_response_of_known_length_is_one_write(keep_alive: bool) -> None:
    body = b'{"id":1}'
    messages = [
        {"type": "http.response.start", "status": 200,
         "headers": [(b"content-length", b"8"), (b"content-type", b"application/json")]},
        {"type": "http.response.body", "body": body},
    ]  # fmt: skip
    _written, error, closed, state, done, transport = asyncio.run(
        play(OneWriteCycle, "POST", keep_alive, messages)
    )
    assert error is None and done and state[:2] == (True, True)
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n" + body)
    assert closed is (not keep_alive)


def test_a_streamed_body_still_goes_as_it_comes() -> None:
    messages = [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]},
        {"type": "http.response.body", "body": b"abc", "more_body": True},
        {"type": "http.response.body", "body": b"def"},
    ]
    *_, transport = asyncio.run(play(OneWriteCycle, "GET", True, messages))
    assert [w[-3:] for w in transport.writes[1:]] == [b"abc", b"def"]


@pytest.mark.slow
def test_a_real_server_answers_pipelined_requests_in_order(tmp_path: Path) -> None:
    """Two requests in one segment: both answered, in order, each whole, on a live gateway."""
    server = GatewayProcess(tmp_path)
    server.start()
    try:
        request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(request * 2)
            got = b""
            while got.count(b"HTTP/1.1 200 OK") < 2 or not got.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, got
                got += chunk
        first, second = got.split(b"HTTP/1.1 200 OK")[1:]
        assert b"x-request-id" in first.lower() and b"x-request-id" in second.lower()
        assert httpx.get(server.url("/health")).status_code == 200
    finally:
        server.kill()


def test_a_paused_transport_is_waited_for_before_the_response_is_written() -> None:
    """Backpressure as uvicorn keeps it: nothing is written while the transport is paused."""

    async def scenario() -> list[bytes]:
        cycle, transport, _done = cycle_of(OneWriteCycle, "GET", True, SERVER_HEADERS)
        await cycle.send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        cycle.flow.pause_writing()
        body = asyncio.create_task(cycle.send({"type": "http.response.body", "body": b"ok"}))
        for _ in range(3):  # turns of the loop: the body task runs up to its wait for the drain
            await asyncio.sleep(0)
        assert transport.writes == [] and not body.done()
        cycle.flow.resume_writing()
        await body
        return list(transport.writes)

    writes = asyncio.run(scenario())
    assert len(writes) == 1 and writes[0].endswith(b"\r\n\r\nok")
