"""A small real-socket /cable client for tests and benchmarks (websockets' asyncio client).

It speaks any of the four subprotocols (or none) and decodes server frames with the SDK's codec,
so a test reads typed frames::

    async with CableClient.connect(server.ws_url("/cable"), protocol=cp.EXT_JSON) as cable:
        welcome = await cable.expect(cp.Welcome)
        await cable.subscribe(contact_identifier(token))
        await cable.expect(cp.ConfirmSubscription)
        event = await cable.next_broadcast()

Pings are skipped by ``next_broadcast`` and ``expect`` unless asked for. The raw frame of the
last ``recv`` is kept in ``last_raw`` for byte-exact assertions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from client_sdk import cable_protocol as cp

F = TypeVar("F")

RECV_TIMEOUT = 10.0


def contact_identifier(pubsub_token: str, *, spelling: str = "compact") -> str:
    """The RoomChannel identifier a contact sends, in one of three spellings clients use."""
    params = {"channel": "RoomChannel", "pubsub_token": pubsub_token}
    return spell(params, spelling)


def agent_identifier(
    pubsub_token: str, account_id: int, user_id: int, *, spelling: str = "compact"
) -> str:
    params = {
        "channel": "RoomChannel",
        "pubsub_token": pubsub_token,
        "account_id": account_id,
        "user_id": user_id,
    }
    return spell(params, spelling)


def spell(params: dict[str, Any], spelling: str) -> str:
    """``compact`` (JSON.stringify), ``sorted`` (Ruby's to_json of a sorted hash), ``spaced``
    (Python's json.dumps defaults)."""
    if spelling == "compact":
        return json.dumps(params, separators=(",", ":"))
    if spelling == "sorted":
        return json.dumps(params, separators=(",", ":"), sort_keys=True)
    if spelling == "spaced":
        return json.dumps(params)
    raise ValueError(spelling)


class CableClient:
    def __init__(self, ws: ClientConnection, protocol: cp.Subprotocol) -> None:
        self.ws = ws
        self.protocol = protocol
        self.last_raw: cp.WireFrame | None = None

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        protocol: str | None = cp.JSON,
        offer: list[str] | None = None,
        headers: dict[str, str] | None = None,
        max_queue: int | None = 1024,
    ) -> AsyncIterator[CableClient]:
        """Open a socket offering ``offer`` (default: just ``protocol``; None offers nothing)."""
        offered = offer if offer is not None else ([protocol] if protocol else [])
        async with connect(
            url,
            subprotocols=offered or None,  # type: ignore[arg-type]
            additional_headers=headers,
            max_queue=max_queue,
            open_timeout=10,
            compression=None,
            ping_interval=None,
        ) as ws:
            chosen = ws.subprotocol
            negotiated = cp.SUBPROTOCOLS[chosen] if chosen else cp.NO_SUBPROTOCOL
            yield cls(ws, negotiated)

    @property
    def encoding(self) -> cp.Encoding:
        return self.protocol.encoding

    async def send(self, command: cp.ClientCommand) -> None:
        await self.ws.send(cp.encode(command, self.encoding))

    async def send_raw(self, frame: cp.WireFrame) -> None:
        await self.ws.send(frame)

    async def subscribe(self, identifier: str, history: cp.HistoryRequest | None = None) -> None:
        await self.send(cp.Subscribe(identifier=identifier, history=history))

    async def recv(self, timeout: float = RECV_TIMEOUT) -> cp.ServerFrame:
        with anyio.fail_after(timeout):
            raw = await self.ws.recv()
        self.last_raw = raw
        return cp.decode_frame(raw, self.encoding)

    async def expect(
        self, kind: type[F], timeout: float = RECV_TIMEOUT, *, skip_pings: bool = True
    ) -> F:
        """The next frame (pings skipped), which must be a ``kind``."""
        with anyio.fail_after(timeout):
            while True:
                frame = await self.recv(timeout)
                if skip_pings and isinstance(frame, cp.Ping) and kind is not cp.Ping:
                    continue
                if not isinstance(frame, kind):
                    raise AssertionError(f"expected {kind.__name__}, got {frame!r}")
                return frame

    async def next_broadcast(self, timeout: float = RECV_TIMEOUT) -> cp.Broadcast:
        return await self.expect(cp.Broadcast, timeout)

    async def closed(self, timeout: float = RECV_TIMEOUT) -> ConnectionClosed:
        """Read until the server closes; return the close exception."""
        with anyio.fail_after(timeout):
            while True:
                try:
                    await self.ws.recv()
                except ConnectionClosed as exc:
                    return exc
