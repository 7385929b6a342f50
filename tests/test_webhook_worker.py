"""The delivery worker, in-process: signing, retries with backoff, dead letters and §9.4,
the SSRF guard at delivery, lease fencing, and the app's worker waking on commit."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest

from gateway.app import create_app
from gateway.domain import outbox
from gateway.domain import provisioning as prov
from gateway.domain.errors import InvalidAttribute
from gateway.webhooks import signing
from gateway.webhooks import worker as worker_module
from gateway.webhooks.guard import UrlUnresolvable
from gateway.webhooks.worker import WebhookWorker
from tests.routes_helpers import inbox_url, settings_for
from tests.store_contract import T0, new_conversation, send
from tests.webhook_helpers import (
    ACCOUNT_HOOK,
    INBOX_HOOK,
    Hooks,
    body,
    get_message,
    inbox_secret,
    prov_set_webhook_url,
)

pytestmark = pytest.mark.anyio


async def test_delivery_is_signed_and_recorded(hooks: Hooks) -> None:
    hook = await hooks.hook(subscriptions=["conversation_created"])
    world = hooks.world
    await new_conversation(hooks.store, world.inbox, world.session)
    worker = hooks.worker()
    async with worker.client() as client:
        assert await worker.run_once(client) == 2
        assert await worker.run_once(client) == 0
    assert len(hooks.requests) == 2
    secrets = {ACCOUNT_HOOK: hook.secret, INBOX_HOOK: (await inbox_secret(hooks)).secret}
    for request in hooks.requests:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-chatwoot-timestamp"] == str(int(T0))
        assert signing.verify(
            secrets[str(request.url)], request.content,
            request.headers["x-chatwoot-signature"], request.headers["x-chatwoot-timestamp"],
            now=T0,
        )  # fmt: skip
        assert json.loads(request.content)["event"] == "conversation_created"
    found = await hooks.deliveries()
    assert {d.uuid for d in found} == {r.headers["x-chatwoot-delivery"] for r in hooks.requests}
    assert all((d.status, d.attempts, d.last_status_code) == ("delivered", 1, 200) for d in found)


async def test_retries_back_off_and_keep_the_delivery_id(hooks: Hooks) -> None:
    await hooks.hook(subscriptions=["conversation_created"])
    world = hooks.world
    await hooks.store.write(  # only the account webhook: no inbox callback here
        prov_set_webhook_url, world.inbox.id, None
    )
    await new_conversation(hooks.store, world.inbox, world.session)
    hooks.answers = [500, 502]
    worker = hooks.worker(rand=lambda: 1.0)
    async with worker.client() as client:
        assert await worker.run_once(client) == 1
        [d] = await hooks.deliveries()
        assert (d.status, d.attempts, d.last_error, d.last_status_code) == (
            "pending", 1, "HTTP 500", 500,
        )  # fmt: skip
        assert d.next_attempt_at == T0 + 10.0  # base 10 s, no jitter taken off
        assert await worker.run_once(client) == 0  # not due yet
        hooks.clock.advance(10.0)
        assert await worker.run_once(client) == 1
        [d] = await hooks.deliveries()
        assert (d.attempts, d.next_attempt_at) == (2, T0 + 10.0 + 20.0)
        hooks.clock.advance(20.0)
        assert await worker.run_once(client) == 1
    [d] = await hooks.deliveries()
    assert (d.status, d.attempts, d.last_error) == ("delivered", 3, None)
    assert len({r.headers["x-chatwoot-delivery"] for r in hooks.requests}) == 1
    assert len({r.content for r in hooks.requests}) == 1
    assert [r.headers["x-chatwoot-timestamp"] for r in hooks.requests] == [
        str(int(T0)), str(int(T0 + 10)), str(int(T0 + 30)),
    ]  # fmt: skip


async def test_a_dead_inbox_callback_marks_the_message_failed(hooks: Hooks) -> None:
    await hooks.hook(subscriptions=["message_updated"])
    world = hooks.world
    conv = (await new_conversation(hooks.store, world.inbox, world.session)).conversation
    message = (await send(hooks.store, conv, world.contact.id, "Hello")).message
    hooks.answers = [503] * 10
    worker = hooks.worker(rand=lambda: 1.0)
    async with worker.client() as client:
        for _ in range(3):
            assert await worker.run_once(client) == 2  # conversation_created, message_created
            hooks.clock.advance(100.0)
    found = {d.event: d for d in await hooks.deliveries()}
    assert found["message_created"].status == "dead"
    assert found["message_created"].attempts == 3
    stored = await hooks.store.read(get_message, message.id)
    assert stored.status == "failed"
    assert stored.content_attributes == {"external_error": "HTTP 503"}
    # Agents and the contact hear it; the account webhook gets message_updated, the inbox's
    # own callback does not (it is what failed).
    [payload] = {e.payload for e in hooks.logged if e.name == "message.updated"}
    data = msgspec.json.decode(payload)["data"]
    assert data["status"] == "failed" and data["previous_changes"]["status"] == ["sent", "failed"]
    updated = [d for d in await hooks.deliveries() if d.event == "message_updated"]
    assert [(d.receiver, d.url) for d in updated] == [("account", ACCOUNT_HOOK)]
    assert body(updated[0])["content_attributes"] == {"external_error": "HTTP 503"}
    # A dead conversation_created changes nothing else.
    assert found["conversation_created"].status == "dead"


async def test_the_guard_runs_again_at_delivery(hooks: Hooks) -> None:
    hooks.ctx.settings = hooks.ctx.settings.with_(webhook_allow_private=False)
    await hooks.store.write(prov_set_webhook_url, hooks.world.inbox.id, "http://127.0.0.1:9/cb")
    await hooks.hook("http://unresolvable.test/x", subscriptions=["conversation_created"])
    world = hooks.world
    await new_conversation(hooks.store, world.inbox, world.session)

    async def resolver(host: str, port: int) -> list[str]:
        raise UrlUnresolvable(f"cannot resolve {host}")

    worker = hooks.worker(resolver=resolver)
    async with worker.client() as client:
        assert await worker.run_once(client) == 2
    assert hooks.requests == []
    found = {d.receiver: d for d in await hooks.deliveries()}
    assert found["inbox"].status == "dead"  # private: refused for good, at once
    assert found["inbox"].last_error is not None
    assert found["inbox"].last_error.startswith("refused: 127.0.0.1 is not a public address")
    assert found["account"].status == "pending"  # no address now: retried later
    assert found["account"].last_error == "cannot resolve unresolvable.test"


async def test_connection_errors_and_timeouts_are_retried(hooks: Hooks) -> None:
    await hooks.store.write(prov_set_webhook_url, hooks.world.inbox.id, None)
    await hooks.hook(subscriptions=["conversation_created"])
    world = hooks.world
    await new_conversation(hooks.store, world.inbox, world.session)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    worker = WebhookWorker(hooks.ctx, transport=httpx.MockTransport(refuse))
    async with worker.client() as client:
        await worker.run_once(client)
    [d] = await hooks.deliveries()
    assert (d.status, d.last_error) == ("pending", "ConnectError: connection refused")


async def test_an_expired_lease_fences_off_the_late_sender(hooks: Hooks) -> None:
    await hooks.store.write(prov_set_webhook_url, hooks.world.inbox.id, None)
    await hooks.hook(subscriptions=["conversation_created"])
    world = hooks.world
    await new_conversation(hooks.store, world.inbox, world.session)
    [first] = await hooks.store.write(outbox.claim, T0, 10, 30.0)
    assert await hooks.store.write(outbox.claim, T0 + 29, 10, 30.0) == []  # leased
    [second] = await hooks.store.write(outbox.claim, T0 + 31, 10, 30.0)  # the sender died
    assert (first.uuid, first.attempts, second.attempts) == (second.uuid, 1, 2)
    assert not await hooks.store.write(outbox.delivered, first, 200, T0 + 32)
    assert await hooks.store.write(outbox.delivered, second, 200, T0 + 32)
    [d] = await hooks.deliveries()
    assert (d.status, d.attempts) == ("delivered", 2)
    with pytest.raises(InvalidAttribute, match="Only a dead delivery"):
        await hooks.store.write(outbox.redeliver, world.account.id, d.uuid, T0 + 33)
    assert await hooks.store.write(outbox.prune, T0 + 33) == 1
    assert await hooks.deliveries() == []


# -- the app's worker ------------------------------------------------------------------------------


async def test_the_app_worker_wakes_on_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No polling in sight (60 s): the commit that enqueued rings the worker."""
    monkeypatch.setattr(worker_module, "POLL_SECONDS", 60.0)
    settings = settings_for(tmp_path, webhook_allow_private=True)
    app = create_app(settings)
    received = anyio.Event()
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        received.set()
        return httpx.Response(204)

    app.state.webhooks.transport = httpx.MockTransport(handler)
    async with app.router.lifespan_context(app):
        store = app.state.ctx.store
        account = await store.write(prov.create_account, "Acme", T0)
        inbox = await store.write(
            prov.create_inbox,
            prov.NewInbox(account_id=account.id, name="Web", webhook_url=INBOX_HOOK), T0,
        )  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await anyio.sleep(0.2)  # the worker is asleep now
            r = await c.post(inbox_url(inbox) + "/contacts", json={"name": "Ann"})
            r = await c.post(inbox_url(inbox) + f"/contacts/{r.json()['source_id']}/conversations")
            assert r.status_code == 200
            with anyio.fail_after(3):
                await received.wait()
                while not app.state.webhooks.delivered:
                    await anyio.sleep(0.01)
    assert [json.loads(b)["event"] for b in bodies] == ["conversation_created"]
