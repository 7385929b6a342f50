"""The chat workload's client processes, each driven by line commands on stdin.

``listen``: the sockets (:mod:`benchmarks.ws_fleet`'s lean client, ``actioncable-v1-ext-json``):
one per customer, subscribed to its contact session's stream, then the agents', subscribed to
their own streams (which carry the inbox's). A message's ``echo_id`` says who posted it and when
(``PHASE.SEQ.CONTACT.T0_US``, T0 on the monotonic clock every process shares), so a frame is
accounted for where it lands, with no coordination: its delay, whether it reached the right
customer socket, which agents got it, and duplicates. Commands: ``count PHASE`` (deliveries so
far), ``report PHASE`` (the figures), ``quit``; while opening, ``more`` after each of the spec's
``steps``.

``post``: customers' POSTs, open loop: ``run PHASE RATE SECONDS FIRST`` sends RATE messages a
second for SECONDS on keep-alive connections, message ``i`` from contact ``(FIRST + i) % N``,
each due at its scheduled time whatever the previous ones are doing. T0 is that scheduled time,
so a server that falls behind is charged for the wait (no coordinated omission). A phase that
falls more than ``MAX_LAG`` seconds behind its schedule is abandoned (the rate is not held).

    python -m benchmarks.chat_fleet listen --spec listen.json
    python -m benchmarks.chat_fleet post --spec post.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from array import array
from collections import Counter
from typing import Any

import uvloop

from .loadgen import HttpConnection, pct, post_request, post_template
from .procs import collector_paused, raise_nofile
from .ws_fleet import ECHO_RE, EVENT_RE, CableSocket, Fleet, close_sockets, open_sockets

EXT_JSON = "actioncable-v1-ext-json"
MAX_LAG = 3.0  # seconds behind schedule: the poster gives the phase up


class PhaseLog:
    """Deliveries of one phase: per message ``[right customer, wrong customer, agents mask,
    duplicates]``, and every delay in microseconds."""

    def __init__(self) -> None:
        self.messages: dict[int, list[int]] = {}
        self.delays = array("q")
        self.count = 0


class ChatFleet(Fleet):
    def __init__(self, n: int, customers: int) -> None:
        super().__init__(n)
        self.customers = customers
        self.phases: dict[bytes, PhaseLog] = {}

    def frame(self, sock: CableSocket, payload: bytes, t: float) -> None:
        if b'"message.created"' in payload:
            m = ECHO_RE.search(payload)
            if m is not None and m.group(1).count(b".") == 3:
                self.delivered(sock.index, m.group(1), t)
                return
        if payload.startswith(b'{"type":"ping"'):
            return
        m = EVENT_RE.search(payload)
        self.other[self.phase, m.group(1).decode(errors="replace") if m else "?"] += 1

    def delivered(self, index: int, echo: bytes, t: float) -> None:
        phase, seq_b, contact_b, t0_b = echo.split(b".")
        log = self.phases.get(phase)
        if log is None:
            log = self.phases[phase] = PhaseLog()
        seq = int(seq_b)
        entry = log.messages.get(seq)
        if entry is None:
            entry = log.messages[seq] = [0, 0, 0, 0]
        log.count += 1
        log.delays.append(int(t * 1e6) - int(t0_b))
        if index < self.customers:
            if index == int(contact_b):
                if entry[0]:
                    entry[3] += 1
                entry[0] += 1
            else:
                entry[1] += 1
        else:
            bit = 1 << (index - self.customers)
            if entry[2] & bit:
                entry[3] += 1
            entry[2] |= bit


async def commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def answer(value: Any) -> None:
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def listen(spec: dict[str, Any]) -> None:
    identifiers: list[str] = spec["identifiers"]
    fleet = ChatFleet(len(identifiers), spec["customers"])
    reader = await commands()
    # ``steps``: counts at which to stop opening, say so (``opened``) and wait for ``more``
    # (the parent reads the server's memory there); the last step is every socket.
    total = len(identifiers)
    steps = [*sorted({n for n in spec.get("steps", []) if 0 < n < total}), total]
    opening, opened = 0.0, 0
    for step in steps:
        began = time.perf_counter()
        await open_sockets(
            fleet, step - opened, spec["port"], identifiers[opened:step], spec["timeout"], EXT_JSON
        )
        opening += time.perf_counter() - began
        opened = step
        if step < total:
            answer({"opened": step})
            await reader.readline()  # "more"
    answer({"ready": total, "seconds": opening})
    try:
        while line := (await reader.readline()).decode().split():
            if line[0] == "count":
                log = fleet.phases.get(line[1].encode())
                answer({"count": log.count if log else 0, "closed": len(fleet.closed)})
            elif line[0] == "report":
                fleet.phase = line[1]
                log = fleet.phases.pop(line[1].encode(), None) or PhaseLog()
                answer({
                    "messages": {str(k): v for k, v in log.messages.items()},
                    "delays_us": log.delays.tolist(),
                    "closed": len(fleet.closed),
                    "closed_sample": fleet.closed[0][1] if fleet.closed else "",
                    "other": {f"{p}/{e}": n for (p, e), n in fleet.other.items()},
                })  # fmt: skip
                gc.collect()  # the phase is over: see ``main``
            elif line[0] == "phase":
                fleet.phase = line[1]
                answer({"phase": line[1]})
            elif line[0] == "quit":
                break
    finally:
        close_sockets(fleet)
        await asyncio.sleep(0.2)


class Poster:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.port: int = spec["port"]
        self.templates = [post_template(path, self.port) for path in spec["paths"]]
        self.size: int = spec["connections"]
        self.idle: asyncio.Queue[HttpConnection] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.idle.put_nowait(await HttpConnection.open(self.port))

    async def run(self, phase: str, rate: float, seconds: float, first: int) -> dict[str, Any]:
        n = len(self.templates)
        total = int(rate * seconds)
        acks: list[float] = []
        sent_lags: list[float] = []
        acked: list[int] = []
        statuses: Counter[str] = Counter()
        lag_max = 0.0
        aborted = False
        tasks: list[asyncio.Task[None]] = []

        async def send(seq: int, due: float) -> None:
            contact = (first + seq) % n
            echo = f"{phase}.{seq}.{contact}.{int(due * 1e6)}"
            conn = await self.idle.get()
            sent_lags.append(time.perf_counter() - due)
            try:
                status, _ = await conn.request(post_request(self.templates[contact], echo))
            except ConnectionError as exc:
                statuses[type(exc).__name__] += 1
                self.idle.put_nowait(await HttpConnection.open(self.port))
                return
            self.idle.put_nowait(conn)
            acks.append(time.perf_counter() - due)
            statuses[str(status)] += 1
            if status == 200:
                acked.append(seq)

        start = time.perf_counter() + 0.02
        for seq in range(total):
            due = start + seq / rate
            wait = due - time.perf_counter()
            while wait > 0:  # uvloop counts its timers in milliseconds: one may fire early
                await asyncio.sleep(wait)
                wait = due - time.perf_counter()
            lag = time.perf_counter() - due
            lag_max = max(lag_max, lag)
            backlog = sum(1 for t in tasks[-self.size * 4 :] if not t.done())
            if lag > MAX_LAG or backlog >= self.size * 4:
                aborted = True
                break
            tasks.append(asyncio.create_task(send(seq, due)))
        posting = time.perf_counter() - start
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*tasks)
        except TimeoutError:
            aborted = True
        acks.sort()
        return {
            "posted": len(tasks),
            "acked": acked,
            "statuses": dict(statuses),
            "achieved_rate": len(tasks) / posting if posting > 0 else 0.0,
            "ack_p50_ms": pct(acks, 50) * 1000,
            "ack_p99_ms": pct(acks, 99) * 1000,
            "lag_max_ms": lag_max * 1000,
            "sent_p50_ms": pct(sorted(sent_lags), 50) * 1000,
            "sent_p99_ms": pct(sorted(sent_lags), 99) * 1000,
            "aborted": aborted,
        }


async def post(spec: dict[str, Any]) -> None:
    poster = Poster(spec)
    reader = await commands()
    await poster.open()
    answer({"ready": poster.size})
    while line := (await reader.readline()).decode().split():
        if line[0] == "run":
            phase, rate, seconds, first = line[1], float(line[2]), float(line[3]), int(line[4])
            answer(await poster.run(phase, rate, seconds, first))
            gc.collect()  # the phase is over: see ``main``
        elif line[0] == "quit":
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["listen", "post"])
    parser.add_argument("--spec", required=True, help="a JSON file")
    args = parser.parse_args()
    raise_nofile()
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    # No collection while a phase runs (``procs.collector_paused`` says why); each command
    # between phases that ends one (``report``, a poster's ``run``) collects.
    with collector_paused():
        uvloop.run(listen(spec) if args.role == "listen" else post(spec))


if __name__ == "__main__":
    main()
