"""Several nodes: what PostgreSQL + Redis and a hop between nodes cost, against one SQLite node.

Three deployments, same machine, same run, same client:

* ``sqlite``      - one ``inboxgate serve`` on SQLite with the in-process broker (the baseline);
* ``pg+redis``    - node A of a two-node cluster on one PostgreSQL database and one private
  ``redis-server``; the subscriber is on A, where the message is posted;
* ``cross-node``  - the same cluster; the message is posted on A, the subscriber is on B, so
  every event crosses Redis.

For each: ``--rate`` messages per second for ``--seconds`` (50/s for 10 s), each POSTed on
schedule whatever the previous one is doing; latency runs from just before the POST to the
arrival of its ``message.created`` frame at the subscribed socket(s) (p50/p99/max). Then a burst
of ``--burst`` messages (``--concurrency`` POSTs in flight): messages delivered per second, and
the CPU each message cost the gateway node(s) and (PostgreSQL) the database's backends, read
from /proc: less noisy than a rate on a shared machine. The burst goes to ONE conversation (a
node writes one conversation's messages one after another); a second burst spreads the same
count over ``--concurrency`` conversations, one per POST in flight (as many customers). Last,
the broker alone: ``--events`` events published one call each through a RedisBroker (node A) to
another RedisBroker's feed (node B), against the same through the in-process broker.

Ratios are to the SQLite baseline. Every frame is tracked: a lost or duplicated one is printed.

    python -m benchmarks.cross_node [--rate 50] [--seconds 10] [--burst 1000] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import uvloop

from gateway.broker import Broker, BrokerMessage, MemoryBroker
from gateway.broker.redis import RedisBroker
from tests.multinode_helpers import FAST, Cluster
from tests.postgres_helpers import ADMIN_URL, create_database, drop_database, with_database
from tests.redis_helpers import RedisServer
from tests.server_helpers import GatewayProcess, server_env

from .loadgen import Posters, json_post
from .procs import collector_paused, cpu_seconds
from .ws_fleet import BenchError, Fleet, close_sockets, open_sockets


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5))) - 1]


class Channel:
    """One contact's conversation: POST on ``post_node``, listen on ``listen_node``."""

    def __init__(self, post_node: GatewayProcess, listen_node: GatewayProcess) -> None:
        self.post_node, self.listen_node = post_node, listen_node
        self.messages_url = ""
        self.identifier = ""

    def open(self, inbox: str) -> None:
        api = self.post_node.url(f"/public/api/v1/inboxes/{inbox}")
        with httpx.Client(timeout=10) as client:
            contact = client.post(f"{api}/contacts", json={"name": "Bench"}).json()
            conv = client.post(f"{api}/contacts/{contact['source_id']}/conversations").json()
        self.messages_url = (
            f"{api}/contacts/{contact['source_id']}/conversations/{conv['id']}/messages"
        )
        params = {"channel": "RoomChannel", "pubsub_token": contact["pubsub_token"]}
        self.identifier = json.dumps(params, separators=(",", ":"))


async def backend_pids(database: str) -> list[int]:
    """The PostgreSQL server processes serving ``database`` (the nodes' pooled connections)."""
    conn = await asyncpg.connect(ADMIN_URL, timeout=3)
    try:
        found = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return [int(r[0]) for r in found]


async def store_counts(client: httpx.AsyncClient, node: GatewayProcess) -> dict[str, float]:
    """From ``node``'s metrics so far: operations it ran again (lost races, conflicts), and
    the commits and operations of its write batches (the sum and count of
    ``inboxgate_store_write_batch_size``: SQLite's group commits, PostgreSQL's batches and
    groups, and its writes alone)."""
    r = await client.get(node.url("/metrics"))
    found = {"retries": 0.0, "batched": 0.0, "commits": 0.0}
    names = {
        "inboxgate_store_retries_total{": "retries",
        "inboxgate_store_write_batch_size_sum{": "batched",
        "inboxgate_store_write_batch_size_count{": "commits",
    }
    for line in r.text.splitlines():
        for prefix, key in names.items():
            if line.startswith(prefix):
                found[key] += float(line.rsplit(" ", 1)[1])  # (every engine's series)
    return found


def per_commit(before: dict[str, float], after: dict[str, float]) -> float:
    """Write operations per commit between two :func:`store_counts`."""
    commits = after["commits"] - before["commits"]
    return (after["batched"] - before["batched"]) / commits if commits else 0.0


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of ``pids`` so far; a process gone meanwhile counts as nothing."""
    return sum(t for t in map(cpu_seconds, pids) if t == t)  # NaN for a vanished pid


async def measure(
    channel: Channel, args: argparse.Namespace, label: str, database: str | None = None
) -> dict[str, float]:
    """``database``: also the CPU of the PostgreSQL backends serving it, per message."""
    fleet = Fleet(args.sockets)
    out: dict[str, float] = {}
    # The POSTs on raw keep-alive connections: the client's cost stays out of the latencies.
    posters = Posters(channel.post_node.port, max(64, args.concurrency))
    path = urlsplit(channel.messages_url).path
    async with httpx.AsyncClient(timeout=30.0) as client:  # /metrics only
        await open_sockets(fleet, args.sockets, channel.listen_node.port, channel.identifier, 30)

        answered: dict[str, float] = {}  # echo -> seconds from the POST to its answer

        async def post(echo: str) -> None:
            track = fleet.track(echo)
            track.t0 = time.perf_counter()
            body = json.dumps({"content": echo, "echo_id": echo}).encode()
            async with asyncio.timeout(30):
                status, answer = await posters.post(json_post(path, posters.port, body))
            if status != 200:
                raise BenchError(f"{label}: POST answered {status}: {answer[:200]!r}")
            answered[echo] = time.perf_counter() - track.t0

        try:
            for i in range(5):  # warm-up: connections, caches, the first heal
                await post(f"{label}-warm-{i}")
            # Then as many at once as the burst sends, twice: a PostgreSQL node's pool opens the
            # connections the burst will use (a new backend plans each statement afresh), so the
            # burst measures a warm node, not the pool's growth (most of a 50-message burst).
            for i in range(2):
                await asyncio.gather(
                    *(post(f"{label}-warm-{i}-{j}") for j in range(args.concurrency))
                )
            await asyncio.sleep(0.5)
            # Paced: each POST leaves on schedule, so a slow one delays none of the others.
            n = int(args.rate * args.seconds)
            start = time.perf_counter() + 0.05
            posts = []
            for i in range(n):
                delay = start + i / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                posts.append(asyncio.create_task(post(f"{label}-paced-{i}")))
            await asyncio.gather(*posts)
            paced = [fleet.tracks[f"{label}-paced-{i}".encode()] for i in range(n)]
            await wait_done(paced, 15)
            delays = [d * 1000 for t in paced for d in t.delays]
            out.update(p50=pct(delays, 50), p99=pct(delays, 99), max=max(delays, default=0.0))
            # The HTTP answer alone: what of the delivery's time the POST's own path takes.
            posted = [answered[f"{label}-paced-{i}"] * 1000 for i in range(n)]
            out.update(post_p50=pct(posted, 50), post_p99=pct(posted, 99))
            out["missing"] = sum(t.remaining for t in paced)
            # Burst: throughput with ``concurrency`` POSTs in flight.
            gate = asyncio.Semaphore(args.concurrency)

            async def gated(echo: str) -> None:
                async with gate:
                    await post(echo)

            nodes = list(dict.fromkeys([channel.post_node.pid, channel.listen_node.pid]))
            backends = await backend_pids(database) if database else []
            counts = await store_counts(client, channel.post_node)
            node_cpu, backend_cpu = cpu_of(nodes), cpu_of(backends)
            began = time.perf_counter()
            await asyncio.gather(*(gated(f"{label}-burst-{i}") for i in range(args.burst)))
            burst = [fleet.tracks[f"{label}-burst-{i}".encode()] for i in range(args.burst)]
            await wait_done(burst, 30)
            out["burst_rate"] = args.burst / (max(t.last for t in burst) - began)
            out["node_cpu_us"] = (cpu_of(nodes) - node_cpu) / args.burst * 1e6
            after = await store_counts(client, channel.post_node)
            out["burst_retries"] = after["retries"] - counts["retries"]
            out["burst_per_commit"] = per_commit(counts, after)
            if database:
                # A connection the pool opened during the burst counts whole (from 0).
                backends = list(dict.fromkeys(backends + await backend_pids(database)))
                out["db_cpu_us"] = (cpu_of(backends) - backend_cpu) / args.burst * 1e6
            out["missing"] += sum(t.remaining for t in burst)
            out["duplicates"] = sum(t.duplicates for t in paced + burst)
        finally:
            out["retried"] = posters.retried
            close_sockets(fleet)
            posters.close()
            await asyncio.sleep(0.1)
    return out


async def measure_spread(
    channels: list[Channel], args: argparse.Namespace, label: str, database: str | None = None
) -> dict[str, float]:
    """The burst spread over ``channels`` (one conversation each, one socket each): message
    ``i`` goes to conversation ``i % len(channels)``."""
    fleets = [Fleet(1) for _ in channels]
    paths = [urlsplit(c.messages_url).path for c in channels]
    posters = Posters(channels[0].post_node.port, max(64, args.concurrency))
    out: dict[str, float] = {}

    async def post(i: int, echo: str) -> None:
        k = i % len(channels)
        track = fleets[k].track(echo)
        track.t0 = time.perf_counter()
        body = json.dumps({"content": echo, "echo_id": echo}).encode()
        async with asyncio.timeout(30):
            status, answer = await posters.post(json_post(paths[k], posters.port, body))
        if status != 200:
            raise BenchError(f"{label}: POST answered {status}: {answer[:200]!r}")

    try:
        for fleet, channel in zip(fleets, channels, strict=True):
            await open_sockets(fleet, 1, channel.listen_node.port, channel.identifier, 30)
        for i in range(2 * len(channels)):  # warm-up: each conversation, each connection
            await post(i, f"{label}-spread-warm-{i}")
        gate = asyncio.Semaphore(args.concurrency)

        async def gated(i: int) -> None:
            async with gate:
                await post(i, f"{label}-spread-{i}")

        nodes = list(dict.fromkeys([channels[0].post_node.pid, channels[0].listen_node.pid]))
        backends = await backend_pids(database) if database else []
        node_cpu, backend_cpu = cpu_of(nodes), cpu_of(backends)
        async with httpx.AsyncClient(timeout=30.0) as client:  # /metrics only
            counts = await store_counts(client, channels[0].post_node)
        began = time.perf_counter()
        await asyncio.gather(*(gated(i) for i in range(args.burst)))
        burst = [
            fleets[i % len(channels)].tracks[f"{label}-spread-{i}".encode()]
            for i in range(args.burst)
        ]
        await wait_done(burst, 30)
        out["spread_rate"] = args.burst / (max(t.last for t in burst) - began)
        out["spread_node_cpu_us"] = (cpu_of(nodes) - node_cpu) / args.burst * 1e6
        async with httpx.AsyncClient(timeout=30.0) as client:
            out["spread_per_commit"] = per_commit(
                counts, await store_counts(client, channels[0].post_node)
            )
        if database:
            backends = list(dict.fromkeys(backends + await backend_pids(database)))
            out["spread_db_cpu_us"] = (cpu_of(backends) - backend_cpu) / args.burst * 1e6
        out["spread_missing"] = sum(t.remaining for t in burst)
        out["spread_duplicates"] = sum(t.duplicates for t in burst)
    finally:
        for fleet in fleets:
            close_sockets(fleet)
        posters.close()
        await asyncio.sleep(0.1)
    return out


def spread_channels(post_node: GatewayProcess, listen_node: GatewayProcess, inbox: str,
                    n: int) -> list[Channel]:  # fmt: skip
    """``n`` contacts, one conversation each, for the spread burst."""
    channels = [Channel(post_node, listen_node) for _ in range(n)]
    for channel in channels:
        channel.open(inbox)
    return channels


async def wait_done(tracks: list[Any], timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            for track in tracks:
                await track.done.wait()
    except TimeoutError:
        pass  # counted as missing


async def broker_rate(pair: Callable[[], Awaitable[tuple[Broker, Broker]]], events: int) -> float:
    """Events per second from ``publish`` (one event per call, as one commit each) to the
    other broker's feed."""
    publisher, subscriber = await pair()
    try:
        feed = subscriber.open_feed(max_queue=events + 16)
        feed.listen("session:1")
        payload = b'{"event":"message.created","data":{' + b"x" * 1200 + b"}}"
        got = 0
        began = time.perf_counter()
        for i in range(events):
            await publisher.publish([BrokerMessage("session:1", "epoch", i + 1, payload)])
        async with asyncio.timeout(60):
            while got < events:
                for item in await feed.receive():
                    if not isinstance(item, BrokerMessage):
                        raise BenchError(f"a gap in the broker benchmark: {item!r}")
                    got += 1
        return events / (time.perf_counter() - began)
    finally:
        await publisher.close()
        if subscriber is not publisher:
            await subscriber.close()


async def memory_pair() -> tuple[Broker, Broker]:
    broker = MemoryBroker()
    await broker.start()
    return broker, broker


def redis_pair(url: str) -> Callable[[], Awaitable[tuple[Broker, Broker]]]:
    async def pair() -> tuple[Broker, Broker]:
        a, b = RedisBroker(url, prefix="bench-a"), RedisBroker(url, prefix="bench-a")
        await a.start()
        await b.start()
        return a, b

    return pair


def run(args: argparse.Namespace, root: Path) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    baseline = GatewayProcess(root / "sqlite", server_env(root / "sqlite", **FAST))
    try:
        baseline.start()
        inbox = baseline.provision_inbox(account="Bench", name="Bench")["identifier"]
        channel = Channel(baseline, baseline)
        channel.open(inbox)
        print("sqlite: measuring", flush=True)
        with collector_paused():
            results["sqlite"] = uvloop.run(measure(channel, args, "sqlite"))
            spread = spread_channels(baseline, baseline, inbox, args.concurrency)
            results["sqlite"].update(uvloop.run(measure_spread(spread, args, "sqlite")))
    finally:
        baseline.kill()
    results["sqlite"]["broker_rate"] = uvloop.run(broker_rate(memory_pair, args.events))

    redis = RedisServer(root)
    database = asyncio.run(create_database())
    pool = {"INBOXGATE_DATABASE_POOL_SIZE": str(args.pool_size)} if args.pool_size else {}
    nodes = Cluster(root / "cluster", with_database(ADMIN_URL, database), redis.url, env=pool)
    try:
        redis.start()
        nodes.start()
        inbox = nodes.a.provision_inbox(account="Bench", name="Bench")["identifier"]
        for label, listen in (("pg+redis", nodes.a), ("cross-node", nodes.b)):
            channel = Channel(nodes.a, listen)
            channel.open(inbox)
            print(f"{label}: measuring", flush=True)
            with collector_paused():
                results[label] = uvloop.run(measure(channel, args, label, database))
                spread = spread_channels(nodes.a, listen, inbox, args.concurrency)
                results[label].update(uvloop.run(measure_spread(spread, args, label, database)))
        nodes.kill()
        rate = uvloop.run(broker_rate(redis_pair(redis.url), args.events))
        results["cross-node"]["broker_rate"] = rate
    finally:
        nodes.kill()
        redis.kill()
        asyncio.run(drop_database(database))
    return results


ROWS = [
    ("p50", "delivery latency p50, POST to socket (ms)", "{:.1f}"),
    ("p99", "delivery latency p99 (ms)", "{:.1f}"),
    ("max", "delivery latency max (ms)", "{:.1f}"),
    ("post_p50", "POST answered p50 (ms)", "{:.1f}"),
    ("post_p99", "POST answered p99 (ms)", "{:.1f}"),
    ("burst_rate", "burst: messages delivered per second", "{:.0f}"),
    ("node_cpu_us", "burst: gateway CPU per message, every node (us)", "{:.0f}"),
    ("db_cpu_us", "burst: PostgreSQL backends' CPU per message (us)", "{:.0f}"),
    ("burst_retries", "burst: store operations run again (lost races)", "{:.0f}"),
    ("burst_per_commit", "burst: messages per database write (mean)", "{:.1f}"),
    ("spread_rate", "spread burst (one conversation per POST in flight): messages/s", "{:.0f}"),
    ("spread_node_cpu_us", "spread burst: gateway CPU per message, every node (us)", "{:.0f}"),
    ("spread_db_cpu_us", "spread burst: PostgreSQL backends' CPU per message (us)", "{:.0f}"),
    ("spread_per_commit", "spread burst: messages per database write (mean)", "{:.1f}"),
    ("broker_rate", "broker alone: events per second, publish to the other feed", "{:,.0f}"),
    ("missing", "frames missing", "{:.0f}"),
    ("duplicates", "frames duplicated", "{:.0f}"),
    ("spread_missing", "spread burst: frames missing", "{:.0f}"),
    ("spread_duplicates", "spread burst: frames duplicated", "{:.0f}"),
    ("retried", "POSTs sent again after a dropped connection", "{:.0f}"),
]
RATIO_KEYS = {
    "p50",
    "p99",
    "max",
    "post_p50",
    "post_p99",
    "burst_rate",
    "node_cpu_us",
    "spread_rate",
    "spread_node_cpu_us",
    "broker_rate",
}
COLUMNS = ["sqlite", "pg+redis", "cross-node"]


def table(results: dict[str, dict[str, float]]) -> str:
    head = "| metric | sqlite (baseline) | pg+redis, same node | ratio | cross-node | ratio |"
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for key, label, fmt in ROWS:
        base = results.get("sqlite", {}).get(key)
        cells = [label, fmt.format(base) if base is not None else "n/a"]
        for column in COLUMNS[1:]:
            value = results.get(column, {}).get(key)
            cells.append(fmt.format(value) if value is not None else "n/a")
            ratio = key in RATIO_KEYS and value is not None and base
            cells.append(f"{value / base:.2f}" if ratio and value is not None and base else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="paced messages per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced phase length")
    parser.add_argument("--sockets", type=int, default=1, help="subscribed sockets")
    parser.add_argument("--burst", type=int, default=1000, help="messages in the burst")
    parser.add_argument("--concurrency", type=int, default=16, help="burst POSTs in flight")
    parser.add_argument("--events", type=int, default=20000, help="broker-only events")
    parser.add_argument("--keep", metavar="DIR", help="keep server logs in DIR")
    parser.add_argument(
        "--pool-size", type=int, default=0,
        help="INBOXGATE_DATABASE_POOL_SIZE of the PostgreSQL nodes (default: the gateway's)",
    )  # fmt: skip
    args = parser.parse_args()
    print(
        f"cross-node benchmark: {args.rate:g} msg/s for {args.seconds:g} s, {args.sockets} "
        f"socket(s); burst {args.burst} ({args.concurrency} in flight); broker {args.events} "
        "events; PostgreSQL at the test server, a private redis-server",
        flush=True,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cross-node-") as tmp:
        results = run(args, Path(args.keep) if args.keep else Path(tmp))
    print(f"\ndone in {time.perf_counter() - started:.0f} s\n")
    print(table(results))
    print("\nratio = deployment / sqlite (latency: lower is better; rates: higher is)")


if __name__ == "__main__":
    main()
