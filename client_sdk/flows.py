"""The SDK's multi-step flows, written once as generators that both shells drive.

A flow is a generator that yields :class:`Effect` objects (send this request, wait this long,
read the next frame, hand this event to the application...) and is sent back each answer, or
thrown the exception the I/O raised. It does no I/O and reads no clock of its own, so the
sync shell (:mod:`~client_sdk.sync_client`, :mod:`~client_sdk.sync_session`) and the async one
run the very same steps, and a test can drive it in-process with explicit time. This is
httpx's ``Auth.auth_flow`` pattern.

Why this rather than httpcore's way (write the async half, generate the sync half with
``unasync`` and check the copy in): that would leave fewer hand-written lines (the sync
client and session would be generated), but the logic would still live inside a shell, mixed
with its I/O, and only testable through sockets or fakes of them; and the halves differ in
more than ``async``/``await`` (a receive with a timeout is ``wait_for(recv())`` on one side
and ``recv(timeout=)`` on the other, the outbox runs in a worker thread on one side only, a
pause ends on an ``asyncio.Event`` or a ``threading.Event``, the websockets clients open
differently), each a substitution rule or a shim. Here the reconnect loop, the outbox
delivery, the catch-up and the 429 retry exist once; each shell is its public surface plus a
driver of about 90 lines that maps effects to its I/O (the clearer shells); and the very code
both shells run is what ``tests/test_sdk_state_machine.py`` drives, in-process, against the
gateway's cable core.

The HTTP flows (:class:`Api`) live here; the session's (outbox delivery, the reconnecting
subscription, the HTTP catch-up) in :mod:`~client_sdk.session_flows`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar

import msgspec

from . import cable_protocol as cp
from . import errors, http_core
from . import protocol as p
from .events import Event
from .http_core import ApiCall, ApiRoutes
from .outbox import Outbox
from .session_core import SessionState

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class Effect(Generic[R]):
    """Something a flow asks its shell to do; ``R`` is the type of the answer sent back."""

    __slots__ = ()


Flow: TypeAlias = Generator[Effect[Any], Any, T]


def ask(effect: Effect[R]) -> Generator[Effect[Any], Any, R]:
    """``answer = yield from ask(effect)``: yield one effect, typed by what it answers."""
    answer: R = yield effect
    return answer


@dataclass(frozen=True)
class Done(Generic[T]):
    """The flow returned ``value``."""

    value: T


def resume(flow: Flow[T], answer: Any, error: BaseException | None) -> Effect[Any] | Done[T]:
    """Send ``answer`` into ``flow`` (or throw ``error``); its next effect, or :class:`Done`.
    The one stepping rule both shells' drivers share."""
    try:
        return flow.throw(error) if error is not None else flow.send(answer)
    except StopIteration as stop:
        return Done(stop.value)


def drive(flow: Flow[T], perform: Callable[[Effect[Any]], Any]) -> T:
    """Run ``flow`` to its result, answering each effect with ``perform`` (the sync shells');
    what ``perform`` raises is thrown into the flow, which handles or raises it."""
    answer: Any = None
    error: Exception | None = None
    try:
        while not isinstance(step := resume(flow, answer, error), Done):
            answer, error = None, None
            try:
                answer = perform(step)
            except Exception as exc:
                error = exc
        return step.value
    finally:
        flow.close()


async def adrive(flow: Flow[T], perform: Callable[[Effect[Any]], Awaitable[Any]]) -> T:
    """:func:`drive` for the async shells: ``perform`` is awaited."""
    answer: Any = None
    error: Exception | None = None
    try:
        while not isinstance(step := resume(flow, answer, error), Done):
            answer, error = None, None
            try:
                answer = await perform(step)
            except Exception as exc:
                error = exc
        return step.value
    finally:
        flow.close()


# -- effects ----------------------------------------------------------------------------------

Response: TypeAlias = tuple[int, Mapping[str, str], bytes]


@dataclass(frozen=True)
class Request(Effect[Response]):
    """Send ``call``; the answer is ``(status, headers, body)``. Raises ``TransportError``."""

    call: ApiCall[Any]


@dataclass(frozen=True)
class Sleep(Effect[None]):
    """Wait ``seconds`` (a rate-limited call's ``Retry-After``)."""

    seconds: float


@dataclass(frozen=True)
class Pause(Effect[None]):
    """Wait ``seconds`` before reconnecting, or less if the session is closed meanwhile."""

    seconds: float


@dataclass(frozen=True)
class OutboxCall(Effect[R]):
    """Call ``method`` of the client's :class:`~client_sdk.outbox.Outbox` with ``args`` (the
    async shell runs it in a worker thread)."""

    method: Callable[..., R]
    args: tuple[Any, ...]


def outbox(
    method: Callable[Concatenate[Outbox, P], R], *args: P.args, **kwargs: P.kwargs
) -> OutboxCall[R]:
    """The effect of ``method(outbox, *args)``, type-checked against the method."""
    assert not kwargs, "outbox effects take positional arguments"
    return OutboxCall(method, args)


@dataclass(frozen=True)
class Flush(Effect[int]):
    """Deliver the outbox now, under the session's flush lock (:meth:`flush_outbox`)."""


@dataclass(frozen=True)
class Connect(Effect[str | None]):
    """Open the session's socket; the answer is the subprotocol the server chose. Every
    socket effect raises ``TransportError`` when the socket fails."""

    url: str
    protocols: Sequence[str]


@dataclass(frozen=True)
class Receive(Effect[cp.WireFrame | None]):
    """The next frame, or None when none arrived within ``timeout`` seconds."""

    timeout: float


@dataclass(frozen=True)
class SendFrame(Effect[None]):
    frame: cp.WireFrame


@dataclass(frozen=True)
class CloseSocket(Effect[None]):
    """Close the socket if one is open (never raises)."""


@dataclass(frozen=True)
class Emit(Effect[None]):
    """Hand ``event`` to the application (the events iterator yields it)."""

    event: Event


# -- the HTTP flows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    """The client's calls as flows: its routes and its rate-limit retry policy."""

    routes: ApiRoutes
    rate_limit_retries: int = 0
    max_retry_after: float = 60.0

    def call(self, call: ApiCall[T]) -> Flow[T]:
        """One call; a 429 is retried after its ``Retry-After`` while the policy allows."""
        attempt = 0
        while True:
            status, headers, body = yield from ask(Request(call))
            try:
                return http_core.handle(call, status, headers, body)
            except errors.RateLimited as exc:
                retries, cap = self.rate_limit_retries, self.max_retry_after
                yield from ask(Sleep(http_core.rate_limit_delay(exc, attempt, retries, cap)))
                attempt += 1

    def messages_after(
        self, source_id: str, conversation_id: int, after: int
    ) -> Flow[list[p.PublicMessage]]:
        """Every message newer than ``after``, oldest first, paging back through the list."""
        found: list[p.PublicMessage] = []
        before: int | None = None
        while True:
            call = self.routes.list_messages(source_id, conversation_id, before)
            page = yield from self.call(call)
            found[:0] = [m for m in page if m.id > after]
            if not http_core.older_pages_needed(page, after):
                return found
            before = page[0].id

    def start_session(
        self, base_url: str, request: p.ContactCreateRequest, hmac_token: str | None
    ) -> Flow[SessionState]:
        """Create (or attach to) a contact session; verify it when it carries a valid
        identity. ``hmac_token`` computes a missing ``identifier_hash``."""
        identifier, signed = request.identifier, request.identifier_hash
        if hmac_token is not None and identifier is not None and signed is None:
            signed = http_core.identifier_hash(hmac_token, identifier)
            request = msgspec.structs.replace(request, identifier_hash=signed)
        contact = yield from self.call(self.routes.create_contact(request))
        if identifier is not None and signed is not None:
            # Create never marks the session verified (§4.3); a signed GET does.
            yield from self.call(self.routes.get_contact(contact.source_id, identifier, signed))
        return SessionState(
            base_url=base_url, inbox_identifier=self.routes.inbox_identifier,
            source_id=contact.source_id, pubsub_token=contact.pubsub_token, contact_id=contact.id,
        )  # fmt: skip
