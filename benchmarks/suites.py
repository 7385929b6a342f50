"""The runner's view of the older benchmark modules: each called with its own settings, its
figures returned as plain dicts for the report.

* ``store``      - :mod:`benchmarks.store_writes`: group commit against one commit per write;
* ``fanout``     - :mod:`benchmarks.cable_fanout` (inboxgate against the bare broadcast server)
  plus the idle memory of a raw asyncio connection (:class:`benchmarks.floors.RawCable`);
* ``cross-node`` - :mod:`benchmarks.cross_node`, when PostgreSQL and ``redis-server`` answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from tests.server_helpers import HOST, free_port

from . import procs

Log = Callable[[str], None]


# --- store writes -----------------------------------------------------------------------------


def store(writes: int, concurrency: int, log: Log) -> dict[str, Any]:
    from .store_writes import compare

    results = asyncio.run(compare(writes, concurrency, "full"))
    for name, r in results.items():
        log(
            f"  [store] {name}: {r['writes_per_s']:.0f} creates/s, ack p99 {r['p99_ms']:.2f} ms, "
            f"worst loop stall {r['max_loop_stall_ms']:.2f} ms"
        )
    return {"writes": writes, "concurrency": concurrency, "drivers": results}


# --- fan-out ----------------------------------------------------------------------------------


def fanout(
    connections: int, messages: int, burst: int, steps: list[int], root: Path, log: Log
) -> dict[str, Any]:
    from . import cable_fanout

    server_cpus, load_cpus = procs.cores()
    args = argparse.Namespace(
        connections=connections, messages=messages, pause=0.01, burst=burst,
        burst_concurrency=16, sync="full", transport="lean", timeout=10.0, phase_timeout=60.0,
        only=None,
        keep=str(root), memory_steps=steps,
        pin_server=lambda pid: procs.pin(pid, server_cpus),
    )  # fmt: skip
    with pinned_self(load_cpus):  # this process is the client
        results = cable_fanout.run(args)
        results["raw asyncio"] = raw_floor_memory([*steps, connections], root, server_cpus, log)
    return {"connections": connections, "messages": messages, "burst": burst, "servers": results}


@contextlib.contextmanager
def pinned_self(cpus: set[int]) -> Any:
    import os

    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def raw_floor_memory(
    counts: list[int], root: Path, server_cpus: set[int], log: Log
) -> dict[str, float]:
    """RSS growth of :class:`benchmarks.floors.RawCable` as the sockets open, by count."""
    from .ws_fleet import Fleet, close_sockets, open_sockets

    port = free_port()
    child = procs.Child(
        procs.python("benchmarks.floors", "raw-cable", "--port", str(port)),
        root / "raw-cable.log", cpus=server_cpus,
    )  # fmt: skip
    counts = sorted(set(counts))
    out: dict[str, float] = {}
    with procs.started(child):
        wait_port(port, child)
        identifier = '{"channel":"RoomChannel","pubsub_token":"raw-floor-token"}'

        async def measure() -> None:
            fleet = Fleet(counts[-1])
            before = procs.rss_kib(child.pid)
            done = 0
            try:
                for count in counts:
                    await open_sockets(fleet, count - done, port, identifier, 60)
                    done = count
                    await asyncio.sleep(0.5)
                    out[f"rss_kib@{count}"] = procs.rss_kib(child.pid) - before
            finally:
                close_sockets(fleet)
            out["mem_per_conn_kib"] = out[f"rss_kib@{counts[-1]}"] / counts[-1]

        uvloop.run(measure())
    log(f"  [raw asyncio] {out['mem_per_conn_kib']:.1f} KiB per subscribed socket")
    return out


def wait_port(port: int, child: procs.Child, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.alive():
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise procs.BenchError(f"nothing listens on port {port}{child.tail()}")


# --- cross-node -------------------------------------------------------------------------------


def services() -> tuple[str | None, str | None, str]:
    """(PostgreSQL version, Redis version, why not) - both None-free when both answer."""
    from tests.postgres_helpers import ADMIN_URL

    async def pg_version() -> str:
        import asyncpg

        conn = await asyncpg.connect(ADMIN_URL, timeout=3)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        pg: str | None = asyncio.run(pg_version())
    except Exception as exc:  # any failure means: not here
        return None, None, f"PostgreSQL at {ADMIN_URL} did not answer ({type(exc).__name__})"
    binary = shutil.which("redis-server")
    if binary is None:
        return pg, None, "redis-server is not installed"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    version = next((w[2:] for w in done.stdout.split() if w.startswith("v=")), done.stdout.strip())
    return pg, version, ""


def cross_node(
    rate: float, seconds: float, burst: int, events: int, root: Path, log: Log
) -> dict[str, Any]:
    pg, redis, why = services()
    if why:
        log(f"  [cross-node] skipped: {why}")
        return {"skipped": why}
    from . import cross_node as module

    args = argparse.Namespace(
        rate=rate,
        seconds=seconds,
        sockets=1,
        burst=burst,
        concurrency=16,
        events=events,
        pool_size=0,
    )
    results = module.run(args, root)
    for name, r in results.items():
        log(f"  [cross-node] {name}: {json.dumps({k: round(v, 2) for k, v in r.items()})}")
    return {
        "rate": rate, "seconds": seconds, "burst": burst, "events": events,
        "postgresql": pg, "redis": redis, "deployments": results,
    }  # fmt: skip
