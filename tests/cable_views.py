"""Client-side views of /cable streams for the resume tests, and the store they are checked
against.

* :class:`View`: what one client received on its subscription, checked frame by frame: logged
  broadcasts must arrive at consecutive offsets, never repeated (clients do not de-duplicate).
* :class:`Link`: a connection on a blocking portal's event loop, driven from synchronous code
  (a hypothesis state machine).
* :class:`Listener`: a client task that reconnects forever, restoring its session when it can
  and otherwise resubscribing with its positions, as @anycable/core does.
* :func:`store_messages`: the contact's messages over the public API, paged: the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack, suppress
from typing import Any

import anyio
import httpx
from anyio.from_thread import BlockingPortal
from msgspec import UNSET
from websockets.exceptions import ConnectionClosed, WebSocketException

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient
from tests.server_helpers import GatewayProcess


def contact_path(inbox: str, source_id: str) -> str:
    return f"/public/api/v1/inboxes/{inbox}/contacts/{source_id}"


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.request.url, response.status_code, response.text)
    return response.json()


def store_messages(
    server: GatewayProcess, inbox: str, source_id: str, conversations: list[int]
) -> list[dict[str, Any]]:
    """The contact's messages in all its conversations, by id, paged with ``after``: the truth."""
    found: list[dict[str, Any]] = []
    with httpx.Client(timeout=10.0) as http:
        for conv in conversations:
            after = 0
            while page := ok(
                http.get(
                    server.url(f"{contact_path(inbox, source_id)}/conversations/{conv}/messages"),
                    params={"after": after},
                )
            ):
                found += page
                after = page[-1]["id"]
    return sorted(found, key=lambda m: m["id"])


class View:
    """What one client received on its contact subscription, checked frame by frame."""

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier
        self.positions: dict[str, cp.StreamPosition] = {}
        self.logged: list[cp.Broadcast] = []
        self.errors: list[str] = []

    def record(self, frame: cp.Broadcast) -> None:
        if frame.identifier != self.identifier:
            self.errors.append(f"broadcast for another identifier {frame.identifier!r}")
            return
        if frame.stream_id is UNSET or frame.epoch is UNSET or frame.offset is UNSET:
            return  # transient (typing, presence): no position
        last = self.positions.get(frame.stream_id)
        # The client subscribed before anything was logged on its stream: offsets start at 1.
        expected = 1 if last is None else last.offset + 1
        if frame.offset != expected or (last is not None and frame.epoch != last.epoch):
            event = frame.message.get("event") if isinstance(frame.message, dict) else None
            self.errors.append(
                f"{event} at {frame.epoch}/{frame.offset} on {frame.stream_id} after {last}: "
                f"expected offset {expected}"
            )
        self.positions[frame.stream_id] = cp.StreamPosition(epoch=frame.epoch, offset=frame.offset)
        self.logged.append(frame)

    def history(self) -> cp.HistoryRequest:
        return cp.HistoryRequest(streams=dict(self.positions))

    def created(self) -> list[dict[str, Any]]:
        return [f.message["data"] for f in self.logged if f.message["event"] == "message.created"]

    def received(self, content: str) -> bool:
        return any(m["content"] == content for m in self.created())

    def check_against(self, stored: list[dict[str, Any]], who: str = "client") -> None:
        assert not self.errors, f"{who}: {self.errors}"
        offsets = [(f.stream_id, f.offset) for f in self.logged]
        assert len(set(offsets)) == len(offsets), f"{who}: repeated offsets {offsets}"
        created = self.created()
        ids = [m["id"] for m in created]
        assert len(set(ids)) == len(ids), f"{who}: repeated message ids {ids}"
        assert ids == [m["id"] for m in stored], f"{who}: received {ids}, stored {stored}"
        assert [m["content"] for m in created] == [m["content"] for m in stored]


class Link:
    """One cable connection living on the portal's event loop, driven from synchronous rules."""

    def __init__(self, portal: BlockingPortal, view: View, url: str, protocol: str) -> None:
        self.portal = portal
        self.view = view
        self._stack = AsyncExitStack()
        self.cable: CableClient = portal.call(self._open, url, protocol)

    async def _open(self, url: str, protocol: str) -> CableClient:
        return await self._stack.enter_async_context(CableClient.connect(url, protocol=protocol))

    def send(self, command: cp.ClientCommand) -> None:
        self.portal.call(self.cable.send, command)

    def read_until(self, done: Callable[[cp.ServerFrame], bool], timeout: float = 10.0) -> Any:
        """Read (recording broadcasts) until a frame for which ``done`` holds; return it."""
        return self.portal.call(self._read_until, done, timeout)

    async def _read_until(self, done: Callable[[cp.ServerFrame], bool], timeout: float) -> Any:
        with anyio.fail_after(timeout):
            while True:
                frame = await self.cable.recv(timeout)
                if isinstance(frame, cp.Broadcast):
                    self.view.record(frame)
                if done(frame):
                    return frame
                bad = (cp.Disconnect, cp.RejectHistory, cp.RejectSubscription, cp.Welcome)
                assert not isinstance(frame, bad), f"unexpected {frame!r}"

    def expect(self, kind: type[Any]) -> Any:
        return self.read_until(lambda frame: isinstance(frame, kind))

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake, as a lost network does."""
        self.portal.call(self._abort)

    async def _abort(self) -> None:
        transport = self.cable.ws.transport
        transport.abort()
        with suppress(ConnectionClosed, OSError):
            await self._stack.aclose()


class Listener:
    """A client that reconnects forever: restore if it can, else resubscribe with positions."""

    def __init__(self, protocol: str, identifier: str) -> None:
        self.protocol = protocol
        self.view = View(identifier)
        self.sid: str | None = None
        self.welcomes: list[tuple[int, cp.Welcome]] = []  # (server.starts, welcome)
        self.history_confirms = 0
        self.subscribed = anyio.Event()
        self.cable: CableClient | None = None

    async def run(self, server: GatewayProcess, stop: anyio.Event) -> None:
        while not stop.is_set():
            query = f"?sid={self.sid}" if self.sid else ""
            url, starts = server.ws_url("/cable" + query), server.starts
            try:
                async with CableClient.connect(url, protocol=self.protocol) as cable:
                    self.cable = cable
                    await self._session(cable, starts)
            except (OSError, TimeoutError, WebSocketException):
                pass
            self.cable = None
            await anyio.sleep(0.05)

    async def _session(self, cable: CableClient, starts: int) -> None:
        welcome = await cable.expect(cp.Welcome)
        self.welcomes.append((starts, welcome))
        ident = self.view.identifier
        if welcome.restored is True:
            await cable.send(cp.History(identifier=ident, history=self.view.history()))
        else:
            history = self.view.history() if self.view.positions else None
            await cable.subscribe(ident, history=history)
        self.sid = welcome.sid if isinstance(welcome.sid, str) else None
        while True:
            frame = cp.decode_frame(await cable.ws.recv(), cable.encoding)
            if isinstance(frame, cp.Broadcast):
                self.view.record(frame)
            elif isinstance(frame, cp.ConfirmSubscription):
                self.subscribed.set()
            elif isinstance(frame, cp.ConfirmHistory):
                self.history_confirms += 1
            elif not isinstance(frame, cp.Ping):
                self.view.errors.append(f"unexpected {frame!r}")


# Posted last: once a client has it, any repeat of what came before has arrived too (one stream,
# in order on each socket), so "no duplicate" is proved without waiting for a quiet period.
SENTINEL = "sentinel: the last message"


async def until_received(views: Sequence[View], content: str, timeout: float) -> None:
    for i, view in enumerate(views):
        await wait_for(lambda view=view: view.received(content), timeout, f"client {i}: {content}")


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(0.02)
    assert condition(), f"timed out after {timeout} s waiting for {what}"
