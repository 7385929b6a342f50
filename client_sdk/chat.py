"""``inboxgate chat``: chat with an inbox from a terminal, as a customer.

Built only on the SDK's public API (the kiosk flow in one command): it starts a contact session
(or resumes the one saved in ``--session``), opens a conversation (or continues the last one),
prints agent replies and typing live, and sends each line typed. Sends made while the gateway is
unreachable wait in the outbox (``--outbox`` keeps them across runs) and go out when it is back.

Commands: ``/rate N [comment]`` answers the satisfaction survey, ``/resolve`` resolves the
conversation, ``/quit`` (or end of input) leaves.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from client_sdk import AsyncChatSession, AsyncConversation, AsyncInboxClient, SessionState
from client_sdk.errors import InboxError
from client_sdk.events import (
    Connected,
    ConversationStatusChanged,
    Disconnected,
    Event,
    MessageCreated,
    TypingChanged,
)
from client_sdk.outbox import new_echo_id
from client_sdk.protocol import AgentBotSender, ContactSender, UserSender

HELP = "Type a message and press Enter. /rate N [comment], /resolve, /quit."


class ChatTerminal:
    """One terminal chat: events printed to ``out``, lines from ``lines`` sent."""

    def __init__(self, session: AsyncChatSession, conversation: AsyncConversation, out: TextIO):
        self.session = session
        self.conversation = conversation
        self.out = out
        self.survey_id: int | None = None
        self.mine: set[str] = set()
        self.printed: set[int] = set()  # the history shown at start may also be replayed

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, event: Event) -> None:
        """Print one event, if it concerns this conversation and is worth a line."""
        if isinstance(event, Connected):
            self.say("[reconnected]" if event.reconnect else "[connected]")
        elif isinstance(event, Disconnected):
            self.say(f"[connection lost ({event.reason}), reconnecting...]")
        elif getattr(event, "conversation_id", None) != self.conversation.id:
            return
        elif isinstance(event, MessageCreated):
            self._message(event)
        elif isinstance(event, TypingChanged) and event.typing:
            self.say(f"[{_user_name(event.data.user)} is typing...]")
        elif isinstance(event, ConversationStatusChanged):
            self.say(f"[conversation {event.conversation.status}]")

    def _message(self, event: MessageCreated) -> None:
        message = event.message
        if message.id in self.printed:
            return
        self.printed.add(message.id)
        if event.echo_id is not None and event.echo_id in self.mine:
            return  # typed here: already on screen
        if message.content_type == "input_csat":
            self.survey_id = message.id
            self.say(f"[survey] {message.content or 'Please rate the conversation'}: /rate 1-5")
            return
        sender = message.sender
        who = "you" if event.from_contact else _user_name(sender) if sender else "system"
        self.say(f"{who}: {message.content or ''}")

    async def handle(self, line: str) -> bool:
        """Act on one typed line; False to leave."""
        text = line.strip()
        if not text:
            return True
        if text in ("/quit", "/exit"):
            return False
        try:
            if text == "/resolve":
                await self.conversation.resolve()
            elif text.startswith("/rate"):
                await self._rate(text)
            elif text == "/help":
                self.say(HELP)
            else:
                # Known as ours before it is sent: the socket may bring the message back before
                # the send returns (the gateway publishes on commit, ahead of the response).
                echo_id = new_echo_id()
                self.mine.add(echo_id)
                sent = await self.conversation.send(text, echo_id=echo_id)
                if sent.queued:
                    self.say("[queued: the gateway is unreachable, it will be sent later]")
        except (InboxError, ValueError) as exc:
            self.say(f"[error: {exc}]")
        return True

    async def _rate(self, text: str) -> None:
        parts = text.split(maxsplit=2)
        if self.survey_id is None:
            self.say("[no survey yet]")
            return
        if len(parts) < 2 or not parts[1].isdigit():
            self.say("[usage: /rate N [comment], N from 1 to 5]")
            return
        comment = parts[2] if len(parts) > 2 else None
        await self.conversation.rate(self.survey_id, int(parts[1]), comment)
        self.say("[thank you for your rating]")


def _user_name(sender: ContactSender | UserSender | AgentBotSender) -> str:
    if isinstance(sender, UserSender):
        return sender.available_name or sender.name
    return sender.name


async def _stdin_lines(stream: TextIO) -> asyncio.Queue[str | None]:
    """Lines of ``stream`` as they are typed (None at end of input), without a thread."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def readable() -> None:
        line = stream.readline()
        if not line:
            loop.remove_reader(stream.fileno())
        queue.put_nowait(line or None)

    loop.add_reader(stream.fileno(), readable)
    return queue


async def chat(
    base_url: str,
    inbox_identifier: str,
    *,
    name: str | None = None,
    session_file: Path | None = None,
    outbox_file: Path | None = None,
    conversation_id: int | None = None,
    stdin: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
) -> int:
    """Run a terminal chat until ``/quit`` or end of input; returns the exit status."""
    async with AsyncInboxClient(base_url, inbox_identifier, outbox=outbox_file) as client:
        inbox = await client.get_inbox()
        if session_file is not None and session_file.exists():
            session = client.resume_session(SessionState.load(session_file))
        else:
            session = await client.start_session(name=name)
        known = session.state.conversations
        if conversation_id is not None:
            conversation = session.conversation(conversation_id)
        elif known:
            conversation = session.conversation(known[-1])
        else:
            conversation = await session.start_conversation()
        save: Callable[[], None] = (
            (lambda: session.save(session_file)) if session_file is not None else (lambda: None)
        )
        save()
        term = ChatTerminal(session, conversation, out)
        term.say(f"Chatting with {inbox.name}, conversation #{conversation.id}. {HELP}")
        for message in await conversation.messages():
            term.show(MessageCreated(message, recovered=True))
        lines = await _stdin_lines(stdin)

        async def listen() -> None:
            async for event in session.events():
                term.show(event)
                save()

        try:
            # The listener is owned by this group: closing the session ends its event stream,
            # and an error in it stops the chat at once instead of waiting for the next line.
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(listen())
                try:
                    while (line := await lines.get()) is not None and await term.handle(line):
                        save()
                finally:
                    await session.close()
        except BaseExceptionGroup as group:
            # One listener: its error is shown as itself, not as a group of one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            save()
    return 0


def run(base_url: str, inbox_identifier: str, **options: object) -> int:
    """The ``inboxgate chat`` entry point: :func:`chat` under ``asyncio.run``."""
    try:
        return asyncio.run(chat(base_url, inbox_identifier, **options))  # type: ignore[arg-type]
    except InboxError as exc:
        sys.stderr.write(f"inboxgate chat: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
