"""Kill the gateway (SIGKILL) while the SDK holds an open subscription and keeps sending; the
kiosk itself restarts too, with unsent messages in its outbox file. When everything is back:
every message is stored exactly once, in the order it was sent, and every event reached the
SDK exactly once and in order (checked against the gateway's store). Both shells run it: the
sync client in worker threads, its events iterator in one of them."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from client_sdk import ReconnectPolicy, SessionState
from client_sdk.events import Connected, Disconnected, Event, MessageCreated
from tests.sdk_helpers import (
    ENV,
    SHELLS,
    Agent,
    AnyClient,
    SamePortGateway,
    listen,
    make_client,
    outbox_drained,
    outbox_path,
    sdk,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

FAST = ReconnectPolicy(base=0.1, cap=0.5)


async def wait_for(done: object, what: str, timeout: float = 30.0) -> None:
    assert callable(done)
    with anyio.fail_after(timeout):
        while not done():
            await anyio.sleep(0.02)


def client_for(shell: str, server: SamePortGateway, inbox: str, root: Path) -> AnyClient:
    return make_client(
        shell, server.base_url, inbox, outbox=outbox_path(root), reconnect=FAST, stale_after=4.0
    )


@pytest.mark.timeout(240)
@pytest.mark.parametrize("shell", SHELLS)
async def test_outage_loses_and_repeats_nothing(tmp_path: Path, shell: str) -> None:
    server = SamePortGateway(tmp_path / "gateway", **ENV)
    try:
        await anyio.to_thread.run_sync(server.start)
        inbox = server.provision_inbox(name="Kiosk")
        agent = Agent(server, inbox)
        events: list[Event] = []
        sent_order: list[str] = []

        def heard(content: str) -> bool:
            return any(
                isinstance(e, MessageCreated) and e.message.content == content for e in events
            )

        # 1. A kiosk: subscribed, chatting.
        client = client_for(shell, server, inbox["identifier"], tmp_path)
        session = await sdk(client.start_session, name="Lobby kiosk")
        conv = await sdk(session.start_conversation)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen, session, events)
            await wait_for(lambda: any(isinstance(e, Connected) for e in events), "connected")
            for n in range(3):
                sent_order.append(f"before {n}")
                assert not (await sdk(conv.send, f"before {n}")).queued
            await anyio.to_thread.run_sync(agent.reply, conv.id, "agent before")
            await wait_for(lambda: heard("agent before"), "the agent's first reply")

            # 2. Sends keep coming while the gateway is SIGKILLed mid-stream.
            async def keep_sending() -> None:
                for n in range(12):
                    sent_order.append(f"during {n}")
                    await sdk(conv.send, f"during {n}")
                    await anyio.sleep(0.03)

            tg.start_soon(keep_sending)
            await anyio.sleep(0.12)
            await anyio.to_thread.run_sync(server.kill)
            await wait_for(lambda: any(isinstance(e, Disconnected) for e in events), "the drop")
            await wait_for(lambda: len(sent_order) == 15, "the sender to finish")
            queued = [e for e in await sdk(session.pending) if e.status == "queued"]
            assert queued, "nothing was left in the outbox by the outage"

            # 3. The gateway comes back; the agent answers at once; the outbox drains in order.
            await anyio.to_thread.run_sync(server.start)
            await anyio.to_thread.run_sync(agent.reply, conv.id, "agent after restart")
            await wait_for(lambda: heard("agent after restart") and heard("during 11"), "catch-up")
            # 4. The kiosk goes down too, with messages it could not send yet.
            await anyio.to_thread.run_sync(server.kill)
            for n in range(3):
                sent_order.append(f"offline {n}")
                assert (await sdk(conv.send, f"offline {n}")).queued
            await sdk(session.close)
        session.save(tmp_path / "kiosk" / "session.json")
        await sdk(client.close)
        first_run = len(events)

        # 5. While both are down nothing happens; then the gateway, the agent, and the kiosk
        # (a new client on the same outbox file and saved session) come back.
        await anyio.to_thread.run_sync(server.start)
        await anyio.to_thread.run_sync(agent.reply, conv.id, "agent while kiosk down")
        state = SessionState.load(tmp_path / "kiosk" / "session.json")
        client = client_for(shell, server, inbox["identifier"], tmp_path)
        session = client.resume_session(state)
        assert [e.content for e in await sdk(session.pending) if e.status == "queued"] == [
            f"offline {n}" for n in range(3)
        ]
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen, session, events)
            await wait_for(lambda: heard("offline 2") and heard("agent while kiosk down"), "resume")
            await outbox_drained(session)  # every send confirmed by its echo
            # The agent's last word: once heard, a repeat of anything before it was heard too.
            await anyio.to_thread.run_sync(agent.reply, conv.id, "agent: the last word")
            await wait_for(lambda: heard("agent: the last word"), "the sentinel")
            stored = await sdk(client.messages_after, session.source_id, conv.id)
            await sdk(session.close)
        await sdk(client.close)
    finally:
        server.kill()

    customer = [m.content for m in stored if m.message_type == 0]
    assert customer == sent_order, "a message was lost, doubled or reordered in the store"
    heard_ids = [e.message.id for e in events if isinstance(e, MessageCreated)]
    assert heard_ids == [m.id for m in stored], "events missed, repeated or out of order"
    assert first_run < len(events)
    reconnects = [e for e in events if isinstance(e, Connected) and e.reconnect]
    assert reconnects, "the subscription never reconnected"
