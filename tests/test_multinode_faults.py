"""Two gateway nodes sharing PostgreSQL and Redis, while parts of the deployment fail.

Each test runs the same stream: one customer posts messages one at a time, round robin over
both nodes, retrying an unanswered POST with the same ``echo_id`` on the next node; four
clients (extended JSON and MessagePack, two on each node) listen to the customer's stream and
reconnect the way @anycable/core does. Meanwhile one part fails:

* Redis is killed and restarted (a private ``redis-server`` on a free port, never the
  machine's);
* node A is SIGKILLed: its clients reconnect to node B, restore their sessions there (the sid
  taken on A) and resume from their offsets;
* PostgreSQL goes away (a TCP proxy between the nodes and the server is cut for 3 s, or
  black-holed for 8 s; the machine's PostgreSQL is never stopped): requests get 503 JSON
  within a bounded time, clients that reconnect meanwhile are told to retry, and service
  resumes.

Every test ends with every acknowledged message stored exactly once and delivered exactly
once, in order, to every client (a client that sees a repeated or skipped offset fails).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import contact_identifier
from tests.cable_views import (
    SENTINEL,
    contact_path,
    ok,
    store_messages,
    until_received,
    wait_for,
)
from tests.multinode_helpers import Cluster, NodeListener, Poster, cluster
from tests.postgres_helpers import ThreadedProxy, fresh_database_sync
from tests.redis_helpers import RedisServer
from tests.server_helpers import GatewayProcess

pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(240)]


HOMES = [(cp.EXT_JSON, 0), (cp.EXT_MSGPACK, 0), (cp.EXT_JSON, 1), (cp.EXT_MSGPACK, 1)]
# PostgresStore.op_timeout: the longest a request may wait on the database, retries included.
REQUEST_BOUND = 15.0 + 2.0


class Run:
    """The stream under test: its clients, its poster, and the HTTP client they share."""

    def __init__(self, nodes: Cluster, http: httpx.AsyncClient, inbox: str) -> None:
        self.nodes = nodes
        self.http = http
        self.inbox = inbox
        self.source_id = ""
        self.api = ""
        self.conversation = 0
        self.listeners: list[NodeListener] = []
        self.poster: Poster | None = None

    @property
    def acked(self) -> int:
        return len(self.poster.acked) if self.poster else 0

    async def until_acked(self, count: int, timeout: float = 60.0) -> None:
        await wait_for(lambda: self.acked >= count, timeout, f"{count} acknowledged messages")

    def live_node(self) -> GatewayProcess:
        return next(node for node in self.nodes.nodes if node.proc is not None)


Disruption = Callable[[Run], Awaitable[None]]


async def stream_through(nodes: Cluster, disrupt: Disruption) -> Run:
    """Run the stream, call ``disrupt`` while it flows, then check exactly-once delivery."""
    inbox = nodes.a.provision_inbox(name="Faults")["identifier"]
    async with httpx.AsyncClient(timeout=30.0) as http:
        run = Run(nodes, http, inbox)
        contact = ok(await http.post(nodes.a.url(f"/public/api/v1/inboxes/{inbox}/contacts")))
        run.source_id = contact["source_id"]
        run.api = contact_path(inbox, run.source_id)
        ident = contact_identifier(contact["pubsub_token"])
        run.listeners = [NodeListener(p, ident, nodes.nodes, home) for p, home in HOMES]
        stop_posting, stop_listening = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tasks:
            for listener in run.listeners:
                tasks.start_soon(listener.run, stop_listening)
            with anyio.fail_after(20):
                for listener in run.listeners:
                    await listener.subscribed.wait()
            # Subscribed before the stream's first event: every client sees offsets from 1.
            conv = ok(await http.post(nodes.b.url(f"{run.api}/conversations"), json={}))["id"]
            run.conversation = conv
            run.poster = Poster(nodes.nodes, f"{run.api}/conversations/{conv}/messages")
            tasks.start_soon(run.poster.run, http, stop_posting)
            await run.until_acked(15)
            await disrupt(run)
            settled = run.acked
            await run.until_acked(settled + 20)  # flowing again, on every node still up
            stop_posting.set()
            with anyio.fail_after(REQUEST_BOUND * 2):
                await run.poster.done.wait()
            messages = run.live_node().url(f"{run.api}/conversations/{conv}/messages")
            sentinel = {"content": SENTINEL, "echo_id": "sentinel"}
            run.poster.acked["sentinel"] = ok(await http.post(messages, json=sentinel))
            await until_received([listener.view for listener in run.listeners], SENTINEL, 30)
            stored = await anyio.to_thread.run_sync(
                store_messages, run.live_node(), inbox, run.source_id, [conv]
            )
            stop_listening.set()
            for listener in run.listeners:
                if listener.cable is not None:
                    await listener.cable.ws.close()

    assert run.poster is not None
    by_id = {m["id"]: m for m in stored}
    for echo_id, message in run.poster.acked.items():
        assert message["id"] in by_id, f"acknowledged {echo_id} lost: {message}"
        assert by_id[message["id"]]["content"] == message["content"]
    assert len(stored) == len(run.poster.acked), "a retried echo_id made a second message"
    for i, listener in enumerate(run.listeners):
        listener.view.check_against(stored, who=f"listener {i} ({listener.protocol})")
    return run


@pytest.fixture(name="database")
def database_fixture() -> Iterator[str]:
    with fresh_database_sync() as url:
        yield url


@pytest.fixture(name="nodes")
def nodes_fixture(tmp_path: Path, database: str, own_redis: RedisServer) -> Iterator[Cluster]:
    with cluster(tmp_path / "nodes", database, own_redis.url) as started:
        yield started


@pytest.fixture(name="proxied")
def proxied_fixture(
    tmp_path: Path, database: str, own_redis: RedisServer
) -> Iterator[tuple[Cluster, ThreadedProxy]]:
    """Nodes whose way to PostgreSQL goes through a proxy the test can cut."""
    threaded = ThreadedProxy()
    with threaded as proxy, cluster(tmp_path / "nodes", proxy.url(database), own_redis.url) as c:
        yield c, threaded


async def test_redis_restart_during_a_stream(nodes: Cluster, own_redis: RedisServer) -> None:
    redis = own_redis  # the nodes' Redis: a private redis-server on a free port

    async def restart_redis(run: Run) -> None:
        await anyio.to_thread.run_sync(redis.kill)
        before = run.acked
        await anyio.sleep(2.0)  # posting goes on: each node serves its own sockets
        assert run.acked > before, "nothing acknowledged while Redis was down"
        await anyio.to_thread.run_sync(redis.start)

    run = await stream_through(nodes, restart_redis)
    assert run.poster is not None and not run.poster.refusals
    # Nobody had to reconnect: each node re-read the stream from the log after Redis came
    # back (the broker's subscriber gapped every stream it serves).
    for listener in run.listeners:
        assert len(listener.welcomes) == 1, listener.welcomes
    assert await redis_bus_subscribers(redis) == 2


async def redis_bus_subscribers(redis: RedisServer) -> int:
    """The nodes' subscriber connections on the restarted Redis (one per node)."""

    def count() -> int:
        with redis.client() as client:
            return sum(
                1
                for c in client.client_list()
                if str(c.get("name", "")).startswith("inboxgate-bus-")
            )

    deadline = time.monotonic() + 10
    while (found := await anyio.to_thread.run_sync(count)) < 2 and time.monotonic() < deadline:
        await anyio.sleep(0.1)
    return found


async def test_sigkill_one_node_and_its_clients_resume_on_the_other(nodes: Cluster) -> None:

    async def kill_a(run: Run) -> None:
        status = await anyio.to_thread.run_sync(nodes.a.kill)
        assert status == -9

    run = await stream_through(nodes, kill_a)
    assert run.poster is not None and run.poster.transport_errors >= 1
    for listener in run.listeners:
        if listener.home == 0:
            # Moved to B with the sid taken on A: the session restored there.
            moved = listener.moved_to(1)
            assert moved and moved[0].restored is True, listener.welcomes
            assert moved[0].restored_ids == [listener.view.identifier]
            assert listener.history_confirms >= 1
        else:
            assert len(listener.welcomes) == 1, listener.welcomes  # B's clients stayed


# A cut (refused connections) for 3 s; a black hole (connections never answered) for longer
# than a connect attempt's timeout (3 s).
OUTAGES = {"cut": 3.0, "blackhole": 8.0}


@pytest.mark.parametrize("outage", list(OUTAGES))
async def test_postgres_away_for_a_few_seconds(
    proxied: tuple[Cluster, ThreadedProxy], outage: str
) -> None:
    nodes, threaded = proxied
    answers: list[tuple[int, float, Any, str | None]] = []

    async def database_away(run: Run) -> None:
        threaded.call(outage)
        for listener in run.listeners:  # every client reconnects while it is away
            await listener.drop()
        started = time.monotonic()
        messages = f"{run.api}/conversations/{run.conversation}/messages"

        async def probe(node: GatewayProcess) -> None:
            began = time.monotonic()
            r = await run.http.get(node.url(messages))
            body = r.json() if r.status_code != 200 else None
            answers.append(
                (r.status_code, time.monotonic() - began, body, r.headers.get("retry-after"))
            )

        async with anyio.create_task_group() as probes:
            while time.monotonic() - started < OUTAGES[outage]:
                for node in nodes.nodes:
                    probes.start_soon(probe, node)
                await anyio.sleep(0.5)
            threaded.call("restore")  # probes still waiting on the database may now finish

    run = await stream_through(nodes, database_away)
    assert run.poster is not None
    refusals = [(s, took, body) for s, took, body, _h in run.poster.refusals]
    refused = [(s, took, body) for s, took, body, _h in answers if s != 200] + refusals
    for status, _took, body in refused:
        assert status == 503, (status, body)
        assert (body["status"], body["error"]) == (503, "Service Unavailable"), body
    assert all(h == "1" for s, _t, _b, h in answers if s == 503)
    assert all(took < REQUEST_BOUND for _s, took, _b, _h in answers)
    assert all(took < REQUEST_BOUND for _s, took, _b in refusals)
    if outage == "cut":  # refused at once, so answered at once
        assert [s for s, *_ in answers].count(503) >= 4, answers
        assert all(took < 3.0 for _s, took, _b in refused), refused
    # A black hole holds a request until a connect attempt times out (3 s each, up to the
    # store's 15 s per operation); it ends as a 503 or, once the way is back, a 200.
    for listener in run.listeners:
        assert len(listener.welcomes) >= 2, listener.welcomes  # each reconnected
