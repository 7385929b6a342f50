"""Realtime fan-out: /cable delivery latency, idle memory and fan-out rate, against a bare server.

Three servers, same machine, same run, same client:

* ``inboxgate`` - ``inboxgate serve`` (uvicorn, SQLite) on a temporary database; a message is a
  contact message POSTed to the public API, delivered as ``message.created`` on the contact's
  stream;
* ``bare``      - :mod:`benchmarks.bare_broadcast`: raw ASGI under uvicorn with the same options,
  no database; ``POST /publish`` sends the frame to every socket in a naive sequential loop of
  ``await send(...)``. Its frames are padded to the size of the gateway's frames.
* ``raw asyncio`` - :class:`benchmarks.floors.RawCable`: no ASGI server, an asyncio Protocol per
  socket; ``POST /publish`` (the bare server's body and frame) builds the frame once and writes
  it to every socket with one ``transport.write`` each: the pre-framed write loop, the floor.

N sockets (``--connections``) speak ``actioncable-v1-json`` and all subscribe to one contact's
stream (as N browser tabs would), so every message reaches all N. For each server:

1. idle memory: the server's VmRSS after opening and subscribing the N sockets minus before,
   divided by N (after a one-socket warm-up that posts two messages), read once no frame but
   pings has come for a second;
2. delivery latency: ``--messages`` messages posted one after another (each waits until every
   socket has it, then ``--pause``); latency runs from just before the POST is sent to the
   arrival of the frame at a socket: p50/p99 over all (message, socket) pairs, and over the
   arrival at the last socket of each message;
3. fan-out rate: ``--burst`` messages posted at once (``--burst-concurrency`` requests in
   flight); frames received on all sockets / time from the first POST to the last frame.

The client runs in this process on uvloop: a minimal websocket client (an asyncio Protocol with
a frame parser) that stamps ``time.perf_counter()`` when the bytes arrive, so a frame costs the
client microseconds and the client is not what is measured. Figures are ratios inboxgate / bare
(the report gives them against the raw floor too).

    python -m benchmarks.cable_fanout [--connections 1000] [--messages 200] [--burst 50]
                                      [--sync full|normal] [--transport lean|asgi]
                                      [--quick] [--only inboxgate|bare|raw]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvloop

from tests.server_helpers import HOST, GatewayProcess, free_port

from .bare_broadcast import frame_prefix
from .loadgen import Posters, json_post
from .procs import collector_paused
from .ws_fleet import (
    BenchError,
    Fleet,
    Track,
    close_sockets,
    cpu_seconds,
    open_sockets,
    rss_kib,
)

DEFAULT_FRAME_BYTES = 800  # the bare server's frame size when the gateway did not run


class Target:
    """What the benchmark needs of a server: its pid, port, subscription and how to post."""

    name = ""
    pid = 0
    port = 0
    identifier = ""
    log_path = Path("/nonexistent")

    def request(self, text: str, echo_id: str) -> bytes:
        """The POST of one message, as the bytes sent on a keep-alive connection."""
        raise NotImplementedError

    def check(self, status: int, body: bytes) -> None:
        if status >= 300:
            raise BenchError(f"{self.name}: POST answered {status}: {body[:300]!r}")


class Gateway(Target):
    name = "inboxgate"

    def __init__(self, root: Path, sync: str, transport: str = "lean") -> None:
        self.proc = GatewayProcess(
            root,
            INBOXGATE_SQLITE_SYNCHRONOUS=sync,
            INBOXGATE_RATE_LIMIT_SAFELIST="127.0.0.1",
            INBOXGATE_MESSAGES_PER_MINUTE="0",  # the flood guard off (see http_load)
            INBOXGATE_CABLE_TRANSPORT=transport,
        )
        self.messages_path = ""

    def start(self) -> None:
        self.proc.start()
        self.pid, self.port, self.log_path = self.proc.pid, self.proc.port, self.proc.log_path
        inbox = self.proc.provision_inbox(account="Bench", name="Bench inbox")
        api = self.proc.url(f"/public/api/v1/inboxes/{inbox['identifier']}")
        with httpx.Client(timeout=10) as client:
            contact = client.post(f"{api}/contacts", json={"name": "Bench"})
            contact.raise_for_status()
            source_id = contact.json()["source_id"]
            token = contact.json()["pubsub_token"]
            conv = client.post(f"{api}/contacts/{source_id}/conversations", json={})
            conv.raise_for_status()
            display_id = conv.json()["id"]
        self.messages_path = urlsplit(
            f"{api}/contacts/{source_id}/conversations/{display_id}/messages"
        ).path
        self.identifier = json.dumps(
            {"channel": "RoomChannel", "pubsub_token": token}, separators=(",", ":")
        )

    def request(self, text: str, echo_id: str) -> bytes:
        body = json.dumps({"content": text, "echo_id": echo_id}).encode()
        return json_post(self.messages_path, self.port, body)

    def kill(self) -> None:
        self.proc.kill()


class Bare(Target):
    name = "bare"
    command = ["benchmarks.bare_broadcast"]  # python -m ..., then --port

    def __init__(self, root: Path, frame_bytes: int) -> None:
        self.root = root
        self.frame_bytes = frame_bytes
        self.popen: subprocess.Popen[bytes] | None = None
        self.identifier = json.dumps(
            {"channel": "RoomChannel", "pubsub_token": "bare-bench-token-0123456789"},
            separators=(",", ":"),
        )
        self._log: Any = None

    def start(self) -> None:
        self.port = free_port()
        self.log_path = self.root / f"{self.name.replace(' ', '-')}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", *self.command, "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.pid = self.popen.pid
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    break
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"http://{HOST}:{self.port}/health").status_code == 200:
                        return
                time.sleep(0.05)
        raise BenchError(f"{self.name} did not start:\n{self.log_path.read_text()[-2000:]}")

    def body(self, text: str, echo_id: str) -> dict[str, str]:
        """A message whose frame is ``frame_bytes`` long (padded), like the gateway's."""
        data = {"content": text, "echo_id": echo_id, "pad": ""}
        frame = self.frame_for(data)
        data["pad"] = "x" * max(0, self.frame_bytes - len(frame))
        return data

    def frame_for(self, data: dict[str, str]) -> bytes:
        inner = json.dumps(data, separators=(",", ":"))
        return (frame_prefix(self.identifier) + inner + "}}").encode()

    def request(self, text: str, echo_id: str) -> bytes:
        return json_post("/publish", self.port, json.dumps(self.body(text, echo_id)).encode())

    def kill(self) -> None:
        proc, self.popen = self.popen, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None


class RawFloor(Bare):
    """:class:`benchmarks.floors.RawCable`: the same POSTs and frames as :class:`Bare`."""

    name = "raw asyncio"
    command = ["benchmarks.floors", "raw-cable"]


# --- the measurements -----------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted here)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def client_cpu(cpu_start: float, wall: float) -> str:
    """How busy this process (the client) was: near 100% would mean it is what is measured."""
    return f"client CPU {(time.process_time() - cpu_start) / wall:.0%} of the wall time"


def say(target: Target, text: str) -> None:
    print(f"  [{target.name}] {text}", flush=True)


async def measure(target: Target, args: argparse.Namespace) -> dict[str, float]:
    fleet = Fleet(args.connections + 1)  # socket 0: warm-up; 1..n: the measured sockets
    out: dict[str, float] = {}
    posters = Posters(target.port, args.burst_concurrency)
    run = Run(target, args, fleet, posters, out)
    try:
        fleet.phase = "warm-up"
        await run.warm_up()
        fleet.phase = "subscribe"
        await run.idle_memory()
        fleet.phase = "latency"
        await run.latency()
        fleet.phase = "burst"
        await run.burst()
        fleet.phase = "end"
        await asyncio.sleep(0.2)
        out["rss_end_mib"] = rss_kib(target.pid) / 1024
        sizes = fleet.frame_sizes
        out["frame_bytes"] = statistics.mean(sizes) if sizes else float("nan")
        run.report_anomalies()
    finally:
        close_sockets(fleet)
        posters.close()
        await asyncio.sleep(0.1)
    return out


class Run:
    """The phases of one server's measurement; figures go into ``out``."""

    def __init__(
        self,
        target: Target,
        args: argparse.Namespace,
        fleet: Fleet,
        posters: Posters,
        out: dict[str, float],
    ) -> None:
        self.target = target
        self.args = args
        self.fleet = fleet
        self.posters = posters
        self.out = out
        self.n = args.connections
        self.tag = os.urandom(3).hex()

    async def post(self, track: Track, text: str, echo: str) -> float:
        """POST one message; returns the seconds until the answer."""
        data = self.target.request(text, echo)
        track.t0 = time.perf_counter()
        async with asyncio.timeout(self.args.timeout):
            status, body = await self.posters.post(data)
        answered = time.perf_counter() - track.t0
        self.target.check(status, body)
        return answered

    async def warm_up(self) -> None:
        """One socket, two messages: lazy imports, prepared statements and first-use
        allocations are then not counted as connection memory."""
        args = self.args
        await open_sockets(self.fleet, 1, self.target.port, self.target.identifier, args.timeout)
        for i in range(2):
            echo = f"{self.tag}-warm-{i}"
            track = self.fleet.track(echo)
            await self.post(track, f"warm-up {i}", echo)
            async with asyncio.timeout(args.timeout):
                await track.done.wait()
        self.fleet.tracks.clear()
        self.fleet.sockets[0].close()
        await asyncio.sleep(0.5)

    async def idle_memory(self) -> None:
        args, target, n = self.args, self.target, self.n
        before = rss_kib(target.pid)
        opened = settled = 0.0
        cpu = cpu_seconds(target.pid)
        # ``memory_steps`` (ascending counts up to n): RSS after each, for a memory curve.
        steps = [c for c in getattr(args, "memory_steps", None) or [] if c < n] + [n]
        done = 0
        for count in steps:
            t = time.perf_counter()
            await open_sockets(
                self.fleet, count - done, target.port, target.identifier, args.phase_timeout
            )
            opened += time.perf_counter() - t
            done = count
            # Let the server settle: no frame but pings for a second (subscribing may broadcast).
            settled = await self.fleet.quiet(1.0, args.phase_timeout)
            self.out[f"rss_kib@{count}"] = rss_kib(target.pid) - before
        # Server CPU per socket opened and subscribed (the settling seconds add only pings).
        self.out["open_cpu_us"] = (cpu_seconds(target.pid) - cpu) / n * 1e6
        after = rss_kib(target.pid)
        self.out["subscribe_s"] = opened
        self.out["rss_before_mib"] = before / 1024
        self.out["mem_per_conn_kib"] = (after - before) / n
        say(
            target,
            f"{n} sockets subscribed in {opened:.2f} s, quiet {settled:.1f} s later; RSS "
            f"{before / 1024:.1f} -> {after / 1024:.1f} MiB ({(after - before) / n:.1f} KiB per "
            f"connection)",
        )

    async def latency(self) -> None:
        """One message at a time: each waits until every socket has it, then a pause."""
        args, target, n = self.args, self.target, self.n
        delays: list[float] = []
        firsts: list[float] = []
        lasts: list[float] = []
        answers: list[float] = []
        missing = timeouts = 0
        progress = max(1, args.messages // 4)
        t_phase, cpu = time.perf_counter(), time.process_time()
        for i in range(args.messages):
            echo = f"{self.tag}-lat-{i}"
            track = self.fleet.track(echo)
            answers.append(await self.post(track, f"latency probe {i}", echo))
            try:
                async with asyncio.timeout(args.timeout):
                    await track.done.wait()
            except TimeoutError:
                timeouts += 1
                say(target, f"message {i}: {track.received}/{n} sockets after {args.timeout}s")
                if timeouts >= 3:
                    raise BenchError(f"{target.name}: 3 messages timed out") from None
            received = track.got[1:].count(1)
            missing += n - received
            delays.extend(track.delays)
            if track.delays:
                firsts.append(min(track.delays))
            if received == n:
                lasts.append(track.last - track.t0)
            del self.fleet.tracks[echo.encode()]
            if (i + 1) % progress == 0:
                say(
                    target,
                    f"latency: {i + 1}/{args.messages} messages; these {progress}: last socket "
                    f"p50 {pct(lasts[-progress:], 50) * 1000:.1f} ms",
                )
            await asyncio.sleep(args.pause)
        wall = time.perf_counter() - t_phase
        say(target, f"latency phase took {wall:.1f} s ({client_cpu(cpu, wall)})")
        self.out |= {
            "lat_p50_ms": pct(delays, 50) * 1000,
            "lat_p99_ms": pct(delays, 99) * 1000,
            "first_p50_ms": pct(firsts, 50) * 1000,
            "last_p50_ms": pct(lasts, 50) * 1000,
            "last_p99_ms": pct(lasts, 99) * 1000,
            "ack_p50_ms": pct(answers, 50) * 1000,
            "lat_missing": missing,
        }

    async def burst(self) -> None:
        """``--burst`` messages at once; frames on all sockets / first POST to last frame."""
        args, target, n = self.args, self.target, self.n
        await asyncio.sleep(0.5)
        gate = asyncio.Semaphore(args.burst_concurrency)
        burst = [self.fleet.track(f"{self.tag}-burst-{i}") for i in range(args.burst)]

        async def fire(i: int) -> None:
            async with gate:
                await self.post(burst[i], f"burst {i}", f"{self.tag}-burst-{i}")

        start, cpu = time.perf_counter(), time.process_time()
        server_cpu = cpu_seconds(target.pid)
        posted = float("nan")
        try:
            async with asyncio.timeout(args.phase_timeout):
                await asyncio.gather(*(fire(i) for i in range(args.burst)))
                posted = time.perf_counter() - start
                for track in burst:
                    await track.done.wait()
        except TimeoutError:
            say(target, f"burst: not complete after {args.phase_timeout}s")
        frames = sum(track.received for track in burst)
        end = max((track.last for track in burst), default=start)
        server_cpu = cpu_seconds(target.pid) - server_cpu
        self.out["frame_cpu_us"] = server_cpu / frames * 1e6 if frames else float("nan")
        self.out["fps"] = frames / (end - start) if end > start else 0.0
        self.out["burst_missing"] = args.burst * n - sum(t.got[1:].count(1) for t in burst)
        self.out["duplicates"] = sum(track.duplicates for track in burst)
        say(
            target,
            f"burst: {args.burst} messages posted in {posted:.2f} s, {frames} frames in "
            f"{end - start:.2f} s = {self.out['fps']:.0f} frames/s "
            f"({client_cpu(cpu, time.perf_counter() - start)})",
        )

    def report_anomalies(self) -> None:
        fleet, target = self.fleet, self.target
        dropped = [why for index, why in fleet.closed if index > 0]
        self.out["dropped"] = len(dropped)
        if dropped:
            say(target, f"{len(dropped)} sockets lost, e.g. {dropped[0]}")
        for (phase, event), count in sorted(fleet.other.items()):
            say(target, f"{phase}: {count} {event} frames (not measured)")
        for event, sample in fleet.other_sample.items():
            say(target, f"  e.g. {event}: {sample.decode(errors='replace')}")
        self.out["other_frames"] = sum(fleet.other.values())
        if self.out["duplicates"]:
            say(target, f"{self.out['duplicates']:.0f} duplicate deliveries in the burst")


@contextlib.contextmanager
def running(target: Any) -> Iterator[None]:
    try:
        target.start()
        yield
    finally:
        target.kill()


ROWS: list[tuple[str, str, str]] = [
    # key, label, format
    ("lat_p50_ms", "delivery latency p50, all (message, socket) pairs (ms)", "{:.2f}"),
    ("lat_p99_ms", "delivery latency p99, all (message, socket) pairs (ms)", "{:.2f}"),
    ("last_p50_ms", "delivery latency p50, last socket of each message (ms)", "{:.2f}"),
    ("last_p99_ms", "delivery latency p99, last socket of each message (ms)", "{:.2f}"),
    ("mem_per_conn_kib", "idle memory per connection (KiB)", "{:.1f}"),
    ("fps", "fan-out frames/s (burst)", "{:.0f}"),
    ("frame_cpu_us", "server CPU per frame in the burst, POSTs included (µs)", "{:.1f}"),
    ("open_cpu_us", "server CPU per socket opened and subscribed (µs)", "{:.0f}"),
    ("first_p50_ms", "delivery latency p50, first socket of each message (ms)", "{:.2f}"),
    ("ack_p50_ms", "POST answered p50 (ms; bare answers after its send loop)", "{:.2f}"),
    ("subscribe_s", "time to open and subscribe all sockets (s)", "{:.2f}"),
    ("frame_bytes", "broadcast frame size (bytes)", "{:.0f}"),
    ("rss_before_mib", "server RSS before the sockets (MiB)", "{:.1f}"),
    ("rss_end_mib", "server RSS at the end (MiB)", "{:.1f}"),
    ("lat_missing", "frames missing, latency phase", "{:.0f}"),
    ("burst_missing", "frames missing, burst", "{:.0f}"),
    ("dropped", "sockets lost", "{:.0f}"),
]


RATIOS = {"lat_p50_ms", "lat_p99_ms", "last_p50_ms", "last_p99_ms", "mem_per_conn_kib", "fps"}
RATIOS |= {"frame_cpu_us", "open_cpu_us"}
RATIOS |= {"first_p50_ms", "ack_p50_ms", "subscribe_s", "frame_bytes"}


def table(results: dict[str, dict[str, float]]) -> str:
    gw = results.get("inboxgate", {})
    floors = [results.get("bare", {}), results.get("raw asyncio", {})]
    lines = [
        "| metric | inboxgate | bare server | ratio | raw asyncio | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label, fmt in ROWS:
        g = gw.get(key)
        cells = [fmt.format(g) if g is not None else "n/a"]
        for floor in floors:
            b = floor.get(key)
            cells.append(fmt.format(b) if b is not None else "n/a")
            cells.append(f"{g / b:.2f}" if key in RATIOS and g is not None and b else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    frame_bytes = DEFAULT_FRAME_BYTES
    with tempfile.TemporaryDirectory(prefix="cable-fanout-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        order = ["inboxgate", "bare", "raw"] if args.only is None else [args.only]
        for choice in order:
            target: Gateway | Bare
            if choice == "inboxgate":
                target = Gateway(root / "gateway", args.sync, args.transport)
            elif choice == "bare":
                target = Bare(root, frame_bytes)
            else:
                target = RawFloor(root, frame_bytes)
            name = target.name
            t = time.perf_counter()
            try:
                with running(target):
                    print(f"{name}: pid {target.pid} on port {target.port}", flush=True)
                    if getattr(args, "pin_server", None):  # the runner pins servers to core 0
                        args.pin_server(target.pid)
                    with collector_paused():
                        results[name] = uvloop.run(measure(target, args))
            except Exception as exc:  # report, then go on with the other server
                print(f"{name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                log = (
                    target.log_path.read_text(errors="replace") if target.log_path.exists() else ""
                )
                tail = "\n".join(log.splitlines()[-30:])
                print(f"--- last lines of {target.log_path}:\n{tail}\n---", flush=True)
                continue
            print(f"{name}: done in {time.perf_counter() - t:.1f} s", flush=True)
            observed = results[name]["frame_bytes"]
            if name == "inboxgate" and observed == observed:  # not NaN
                frame_bytes = round(observed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="latency probes")
    parser.add_argument("--pause", type=float, default=0.01, help="seconds between probes")
    parser.add_argument("--burst", type=int, default=50, help="messages in the burst")
    parser.add_argument("--burst-concurrency", type=int, default=16, help="POSTs in flight")
    parser.add_argument("--sync", default="full", choices=["full", "normal"])
    parser.add_argument(
        "--transport", default="lean", choices=["lean", "asgi"], help="INBOXGATE_CABLE_TRANSPORT"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per message, seconds")
    parser.add_argument("--phase-timeout", type=float, default=60.0, help="per phase, seconds")
    parser.add_argument("--only", choices=["inboxgate", "bare", "raw"], help="run one server only")
    parser.add_argument("--keep", metavar="DIR", help="keep databases and server logs in DIR")
    parser.add_argument("--quick", action="store_true", help="100 connections, 50 messages")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.messages = 100, 50
    print(
        f"cable fan-out benchmark: {args.connections} sockets on one stream, {args.messages} "
        f"sequential messages ({args.pause * 1000:.0f} ms apart), burst of {args.burst} "
        f"({args.burst_concurrency} POSTs in flight); gateway SQLite synchronous={args.sync}, "
        f"/cable transport {args.transport}; "
        f"bare server: sequential await send() per socket in the POST handler; raw asyncio: "
        f"one pre-framed transport.write per socket",
        flush=True,
    )
    results = run(args)
    print()
    print(table(results))
    print("\nratio = inboxgate / floor (latency, memory: lower is better; frames/s: higher is)")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the servers were killed", file=sys.stderr)
        sys.exit(130)
