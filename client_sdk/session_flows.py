"""The flows of one contact session, written once for both shells (see :mod:`client_sdk.flows`).

* :meth:`SessionFlows.send` and :meth:`SessionFlows.flush`: every send goes through the outbox,
  which is delivered in order and stops at the first failure that is worth retrying;
* :meth:`SessionFlows.events`: the realtime subscription. It connects, feeds frames to the
  :class:`~client_sdk.cable_core.CableCore`, hands typed events over once each, catches up
  over HTTP when the server cannot replay, delivers the outbox whenever the subscription
  comes up (and retries it while connected), and reconnects with backoff until closed.

The shells hold the socket, the locks and the clock; :attr:`SessionFlows.closed` is the one
piece of state they set from outside (their ``close``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from . import errors
from . import protocol as p
from .cable_core import CableCore
from .events import Event, MessageCreated
from .flows import (
    Api,
    CloseSocket,
    Connect,
    Emit,
    Flow,
    Flush,
    Pause,
    Receive,
    SendFrame,
    ask,
    outbox,
)
from .http_core import AttachmentFile
from .options import RealtimeOptions, Sent
from .outbox import Outbox
from .session_core import SessionCore

log = logging.getLogger("client_sdk.session")

# While connected, queued sends that failed are retried this often.
OUTBOX_RETRY = 2.0


class SessionFlows:
    """The steps of one session. ``clock`` is monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        core: SessionCore,
        api: Api,
        realtime: RealtimeOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = core
        self.api = api
        self.realtime = realtime
        self.clock = clock
        self.closed = False
        self.listening = False
        # Sends waiting for their own outcome, filled in by whichever flush delivers them.
        self._waiting: dict[str, p.PublicMessage | errors.InboxError | None] = {}

    @property
    def source_id(self) -> str:
        return self.core.state.source_id

    # -- sends ------------------------------------------------------------------------------

    def send(
        self,
        conversation_id: int,
        content: str | None,
        attachments: Sequence[AttachmentFile],
        echo_id: str | None,
    ) -> Flow[Sent]:
        """Queue, then flush; the stored message, or a queued :class:`Sent`. Raises the
        :class:`~client_sdk.errors.ApiError` that refused this message for good."""
        add = outbox(Outbox.add, self.source_id, conversation_id, content, attachments, echo_id)
        entry = yield from ask(add)
        self._waiting[entry.echo_id] = None
        try:
            yield from ask(Flush())
            outcome = self._waiting.get(entry.echo_id)
        finally:
            self._waiting.pop(entry.echo_id, None)
        if isinstance(outcome, errors.InboxError):
            raise outcome
        return Sent(entry.echo_id, outcome)

    def flush(self) -> Flow[int]:
        """Deliver queued messages, oldest first, until one cannot go; how many went."""
        delivered = 0
        for entry in (yield from ask(outbox(Outbox.queued, self.source_id))):
            call = self.api.routes.send_message(
                self.source_id, entry.conversation_id, entry.content, entry.echo_id,
                entry.attachments,
            )  # fmt: skip
            try:
                message = yield from self.api.call(call)
            except errors.InboxError as exc:
                if self.core.retry_later(exc):
                    break
                yield from ask(outbox(Outbox.mark_failed, entry.echo_id, str(exc)))
                if entry.echo_id in self._waiting:
                    self._waiting[entry.echo_id] = exc
                continue
            yield from ask(outbox(Outbox.mark_sent, entry.echo_id, message.id))
            self.core.track(message.conversation_id)
            if entry.echo_id in self._waiting:
                self._waiting[entry.echo_id] = message
            delivered += 1
        return delivered

    # -- realtime ---------------------------------------------------------------------------

    def events(self) -> Flow[None]:
        """The subscription until :attr:`closed`, handing events over with :class:`Emit`.
        Raises ``ConnectionClosed`` when the server ends it for good (or reconnecting gives
        up), ``ProtocolError`` for a protocol not offered."""
        if self.listening:
            raise RuntimeError("events() is already being iterated for this session")
        self.listening = True
        try:
            yield from self._subscription()
        finally:
            self.listening = False

    def _subscription(self) -> Flow[None]:
        opts = self.realtime
        cable = self.core.cable(opts.protocols, opts.stale_after)
        attempt = 0
        while not self.closed:
            try:
                chosen = yield from ask(Connect(cable.url(opts.cable_url), cable.protocols))
            except errors.TransportError as exc:
                log.debug("connect failed: %r", exc)
                if opts.reconnect.gives_up(attempt):
                    raise errors.ConnectionClosed("gave up reconnecting") from exc
                yield from ask(Pause(opts.reconnect.delay(attempt)))
                attempt += 1
                continue
            cable.opened(chosen, self.clock())
            reason, heard = yield from self._connection(cable)
            yield from ask(CloseSocket())
            if self.closed:
                return
            if heard:
                attempt = 0
            yield from ask(Emit(cable.lost(reason)))
            yield from ask(Pause(opts.reconnect.delay(attempt)))
            attempt += 1

    def _connection(self, cable: CableCore) -> Flow[tuple[str, bool]]:
        """One connection: frames in, events out, until it breaks. Returns why, and whether
        it handed any event over (then the backoff starts again from its first step)."""
        heard = False
        retry_at: float | None = None
        while not self.closed:
            now = self.clock()
            if retry_at is not None and now >= retry_at:
                retry_at = yield from self._deliver(cable)
            if cable.stale(now):
                return "stale_connection", heard
            wait = cable.time_left(now)
            if retry_at is not None:
                wait = min(wait, max(0.0, retry_at - now))
            try:
                raw = yield from ask(Receive(wait))
                if raw is None:
                    continue  # stale, or time to retry the outbox: both checked above
                step = cable.receive(raw, self.clock())
                for frame in step.send:
                    yield from ask(SendFrame(frame))
                for event in step.events:
                    if (yield from self._accept(event)):
                        heard = True
                        yield from ask(Emit(event))
                # The gateway may go away mid catch-up: reconnect, and catch up again.
                for event in (yield from self._catch_up()) if step.catch_up else ():
                    heard = True
                    yield from ask(Emit(event))
            except errors.TransportError:
                return "transport_closed", heard
            if step.live:
                retry_at = yield from self._deliver(cable)
            self.core.remember_since(cable)
            if step.closed is not None:
                if not step.closed.reconnect:
                    raise errors.ConnectionClosed(step.closed.reason)
                return step.closed.reason, heard
        return "closed", heard

    def _deliver(self, cable: CableCore) -> Flow[float | None]:
        """Flush; when something is left and the subscription is live, when to retry."""
        yield from ask(Flush())
        left = yield from ask(outbox(Outbox.queued, self.source_id))
        return self.clock() + OUTBOX_RETRY if left and cable.live else None

    def _catch_up(self) -> Flow[list[Event]]:
        """Missed messages fetched over HTTP, each accepted once, in order."""
        listed = yield from self.api.call(self.api.routes.list_conversations(self.source_id))
        found: list[Event] = []
        for conversation_id, after in self.core.catch_up_plan(listed):
            messages = yield from self.api.messages_after(self.source_id, conversation_id, after)
            for event in self.core.recovered(messages, after):
                if (yield from self._accept(event)):
                    found.append(event)
        return found

    def _accept(self, event: Event) -> Flow[bool]:
        """:meth:`SessionCore.accept`, then the outbox entry the message confirms settled."""
        if not self.core.accept(event):
            return False
        if isinstance(event, MessageCreated):
            message_id = event.message.id
            yield from ask(outbox(Outbox.settle, self.source_id, event.echo_id, message_id))
        return True
