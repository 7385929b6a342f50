"""The SDK against a server that only speaks plain ``actioncable-v1-json`` (a stock Chatwoot):
a real websocket proxy in front of the gateway offers nothing else, so there is no session
restore and no history. After an outage the SDK catches up through the messages list: every
message reaches it once, in order, including those sent while it was away. Both shells run it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from client_sdk import ReconnectPolicy
from client_sdk import cable_protocol as cp
from client_sdk.events import Connected, Disconnected, Event, MessageCreated
from tests.sdk_helpers import ENV, SHELLS, Agent, PlainCableProxy, listen, make_client, sdk
from tests.server_helpers import gateway_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def wait_for(done: object, what: str, timeout: float = 20.0) -> None:
    assert callable(done)
    with anyio.fail_after(timeout):
        while not done():
            await anyio.sleep(0.02)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shell", SHELLS)
async def test_plain_actioncable_server_degrades_to_http_catch_up(
    tmp_path: Path, shell: str
) -> None:
    with gateway_server(tmp_path, **ENV) as server:
        inbox = server.provision_inbox(name="Plain")
        agent = Agent(server, inbox)
        proxy = PlainCableProxy(lambda: server.ws_url("/cable"))
        await proxy.start()
        client = make_client(
            shell, server.base_url, inbox["identifier"], cable_url=proxy.url,
            reconnect=ReconnectPolicy(base=0.1, cap=0.4),
        )  # fmt: skip
        events: list[Event] = []

        def heard(content: str) -> bool:
            return any(
                isinstance(e, MessageCreated) and e.message.content == content for e in events
            )

        try:
            session = await sdk(client.start_session, name="Plain customer")
            conv = await sdk(session.start_conversation)
            async with anyio.create_task_group() as tg:
                tg.start_soon(listen, session, events)
                await wait_for(lambda: any(isinstance(e, Connected) for e in events), "connected")
                await sdk(conv.send, "hello over plain json")
                await anyio.to_thread.run_sync(agent.reply, conv.id, "live reply")
                await wait_for(lambda: heard("live reply"), "the live reply")
                live = [e for e in events if isinstance(e, MessageCreated)]
                assert all(not e.recovered and e.data is not None for e in live)

                # The network drops; the agent keeps writing; nothing can be replayed.
                await proxy.outage()
                await wait_for(lambda: any(isinstance(e, Disconnected) for e in events), "drop")
                for n in range(23):  # more than one page of the messages list
                    await anyio.to_thread.run_sync(agent.reply, conv.id, f"missed {n}")
                proxy.restore()
                await wait_for(lambda: heard("missed 22"), "the catch-up")
                await anyio.to_thread.run_sync(agent.reply, conv.id, "live again")
                await wait_for(lambda: heard("live again"), "live traffic after the catch-up")
                await anyio.sleep(0.3)  # a repeat would arrive now
                stored = await sdk(client.messages_after, session.source_id, conv.id)
                await sdk(session.close)
        finally:
            await sdk(client.close)
            await proxy.stop()

    assert all(offered == [f"{cp.EXT_JSON}, {cp.JSON}"] for offered in proxy.offered)
    connects = [e for e in events if isinstance(e, Connected)]
    assert connects[0] == Connected(reconnect=False, restored=False)
    assert all(not e.restored for e in connects) and len(connects) >= 2
    messages = [e for e in events if isinstance(e, MessageCreated)]
    assert [e.message.id for e in messages] == [m.id for m in stored]
    recovered = [e.message.content for e in messages if e.recovered]
    assert recovered == [f"missed {n}" for n in range(23)]
