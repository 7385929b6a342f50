"""The runner's view of the older benchmark modules: each called with its own settings, its
figures returned as plain dicts for the report.

* ``store``      - :mod:`benchmarks.store_writes`: group commit against one commit per write;
* ``fanout``     - :mod:`benchmarks.cable_fanout` (inboxgate against the bare broadcast server
  and the raw asyncio floor, :class:`benchmarks.floors.RawCable`);
* ``cross-node`` - :mod:`benchmarks.cross_node`, when PostgreSQL and ``redis-server`` answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import procs

Log = Callable[[str], None]


# --- store writes -----------------------------------------------------------------------------


# Group commit runs this many times the floors' writes: 4,000 at 20,000/s last 0.2 s, mostly
# the run's start (the writer's first batches, its statements prepared, the WAL's first pages),
# while the floors' 4,000 take seconds.
GROUP_RUN = 5


def store(writes: int, concurrency: int, log: Log) -> dict[str, Any]:
    from .store_writes import DRIVERS, compare, ticker_alone

    floors = tuple(d for d in DRIVERS if d != "group")
    results = asyncio.run(compare(writes, concurrency, "full", floors))
    results |= asyncio.run(compare(writes * GROUP_RUN, concurrency, "full", ("group",)))
    for name, r in results.items():
        r["writes"] = writes * GROUP_RUN if name == "group" else writes
        log(
            f"  [store] {name}: {r['writes_per_s']:.0f} creates/s ({r['writes']:.0f} writes), "
            f"ack p99 {r['p99_ms']:.2f} ms, worst loop stall {r['max_loop_stall_ms']:.2f} ms "
            f"(p99 {r['loop_late_p99_ms']:.2f})"
        )
    # As long as group commit's run took: the stall the machine alone gives a ticker.
    seconds = max(1.0, results["group"]["writes"] / results["group"]["writes_per_s"])
    alone = asyncio.run(ticker_alone(seconds))
    log(
        f"  [store] ticker alone ({seconds:.1f} s): worst lateness "
        f"{alone['max_loop_stall_ms']:.2f} ms (p99 {alone['loop_late_p99_ms']:.2f})"
    )
    return {
        "writes": writes, "concurrency": concurrency, "drivers": results,
        "ticker_alone": {**alone, "seconds": seconds},
    }  # fmt: skip


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
