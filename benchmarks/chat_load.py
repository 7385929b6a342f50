"""The chat workload: many customers chatting at once, as a busy inbox sees them.

``inboxgate serve`` (SQLite, ``synchronous=full``, pinned to core 0) with N customer sockets (one
per contact, ``actioncable-v1-ext-json``, each subscribed to its own session stream) and 20
agent sockets on the inbox. Customers post at a steady rate, each message from the next
customer to its own conversation; the message reaches the poster's socket and the 20 agents'
(21 deliveries). Per rate: POST-to-socket latency p50/p99/max over every delivery, deliveries
lost or duplicated (must be 0), the server's CPU and the load generator's (from /proc), and at
the end the highest rate held with p99 <= 10 ms. The clients are :mod:`benchmarks.chat_fleet`
processes on the other cores: one holds the sockets, one posts.

    python -m benchmarks --only chat
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.server_helpers import GatewayProcess, free_port, server_env

from . import procs, server_waits
from .http_load import GATEWAY_ENV
from .loadgen import pct
from .seed import seed

TARGET_P99_MS = 10.0


@dataclass
class Config:
    customers: int = 10_000
    agents: int = 20
    rates: list[float] = field(default_factory=lambda: [250, 500, 1000, 2000, 3000])
    seconds: float = 10.0
    # Server CPU with every socket open and nothing posted (pings only), measured this long.
    idle_seconds: float = 9.0
    connections: int = 128  # the posters' keep-alive connections
    warmup: bool = True
    # After the measured phases: one more at the first rate under py-spy, into this SVG.
    flame: Path | None = None
    # Socket counts at which the opening pauses for the server's memory (and at every socket):
    # the memory curve's points.
    memory_steps: list[int] = field(default_factory=lambda: [1_000, 5_000])


def run(config: Config, root: Path, log: Callable[[str], None]) -> dict[str, Any]:
    server_cpus, load_cpus = procs.cores()
    hard = procs.raise_nofile()  # the gateway inherits it; the clients raise their own
    need = config.customers + config.agents + 200
    if hard < need:
        raise procs.BenchError(f"RLIMIT_NOFILE hard limit {hard} < {need} sockets")
    env = server_env(root / "gateway", **GATEWAY_ENV)
    began = time.perf_counter()
    s = seed(env, customers=config.customers, agents=config.agents)
    log(f"seeded {config.customers} customers and {config.agents} agents in "
        f"{time.perf_counter() - began:.1f} s")  # fmt: skip
    gateway = GatewayProcess(root / "gateway", env)
    gateway.start()
    procs.pin(gateway.pid, server_cpus)
    log(f"  [chat] inboxgate: pid {gateway.pid} on port {gateway.port}")
    identifiers = [c.identifier() for c in s.customers] + [a.identifier() for a in s.agents]
    listen_spec = root / "listen.json"
    listen_spec.write_text(json.dumps({
        "port": gateway.port, "identifiers": identifiers, "customers": len(s.customers),
        "timeout": 60 + len(identifiers) / 50, "steps": config.memory_steps,
    }))  # fmt: skip
    post_spec = root / "post.json"
    paths = [s.conversation_path(c) + "/messages" for c in s.customers]
    post_spec.write_text(
        json.dumps({"port": gateway.port, "paths": paths, "connections": config.connections})
    )
    module = "benchmarks.chat_fleet"
    out: dict[str, Any] = {
        "customers": config.customers, "agents": config.agents, "seconds": config.seconds,
        "rates": [], "notes": [],
    }  # fmt: skip
    listener: procs.Child | None = None
    poster: procs.Child | None = None
    try:
        rss_before = procs.rss_kib(gateway.pid)
        listener = procs.Child(
            procs.python(module, "listen", "--spec", str(listen_spec)), root / "listen.log",
            cpus=load_cpus, pipes=True,
        )  # fmt: skip
        curve: dict[str, float] = {}  # sockets -> server RSS growth (MiB), idle
        while True:
            said = json.loads(listener.receive(90 + len(identifiers) / 50))
            time.sleep(1.0)  # presence and confirmations settle
            rss_after = procs.rss_kib(gateway.pid)
            count = said.get("opened", said.get("ready"))
            curve[str(count)] = (rss_after - rss_before) / 1024
            if "ready" in said:
                break
            listener.send("more")
        out["memory"] = {
            "sockets": len(identifiers),
            "open_s": said["seconds"],
            "rss_before_mib": rss_before / 1024,
            "rss_after_mib": rss_after / 1024,
            "per_socket_kib": (rss_after - rss_before) / len(identifiers),
            "growth_mib": curve,
        }
        log(f"  [chat] {len(identifiers)} sockets subscribed in {said['seconds']:.1f} s; RSS "
            f"{rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB; growth by sockets: "
            + ", ".join(f"{int(n):,}: {mib:.1f} MiB" for n, mib in curve.items()))  # fmt: skip
        if config.idle_seconds > 0:
            # Three ping ticks (every 3 s) at least: what idle sockets cost with their pings.
            idle = procs.CpuMeter([gateway.pid]).start()
            time.sleep(config.idle_seconds)
            out["memory"]["idle_cpu"] = idle.stop()
            log(f"  [chat] {len(identifiers)} idle sockets: server CPU "
                f"{out['memory']['idle_cpu']:.1f}% of a core")  # fmt: skip
        poster = procs.Child(
            procs.python(module, "post", "--spec", str(post_spec)), root / "post.log",
            cpus=load_cpus, pipes=True,
        )  # fmt: skip
        poster.receive(60)
        first = 0
        if config.warmup:
            phase(listener, poster, gateway.pid, gateway.port, "w", 50, 1.0, first, config)
            first += 50
        for i, rate in enumerate(config.rates):
            time.sleep(1.0)  # the last phase's tail is over, its garbage collected
            r = phase(
                listener, poster, gateway.pid, gateway.port, f"p{i}", rate, config.seconds, first,
                config,
            )  # fmt: skip
            first += r["posted"]
            out["rates"].append(r)
            log(
                f"  [chat] {rate:g} msg/s: achieved {r['achieved_rate']:.0f}, p50 "
                f"{r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms, "
                f"lost {r['lost']}, duplicated {r['duplicated']}, server CPU "
                f"{r['server_cpu']:.0f}% (its core {r['server_core_busy']:.0f}% busy; "
                f"{r['server_cpu_us_per_msg']:.0f} us a message, the event loop "
                f"{r['loop_cpu_us_per_msg']:.0f}), load CPU {r['load_cpu']:.0f}%"
            )
            waits = {k: server_waits.Waits(**w) for k, w in r["server_waits"].items()}
            log(f"  [chat] {rate:g} msg/s, inside the server: {server_waits.describe(waits)}")
            if r["aborted"]:
                out["notes"].append(
                    f"{rate:g} msg/s: the server fell behind, the phase was cut short after "
                    f"{r['posted']} messages ({r['posted'] / rate:.1f} s)"
                )
        held = [
            r["rate"] for r in out["rates"]
            if r["p99_ms"] <= TARGET_P99_MS and not r["lost"] and not r["duplicated"]
            and not r["aborted"] and r["achieved_rate"] >= 0.95 * r["rate"]
        ]  # fmt: skip
        out["held_rate"] = max(held) if held else 0
        if config.flame is not None:
            out["flame"] = flame(
                listener, poster, gateway.pid, gateway.port, first, config, root, load_cpus
            )
            log(f"flame graph: {config.flame}")
        listener.send("quit")
        poster.send("quit")
    finally:
        for maybe in (listener, poster):
            if maybe is not None:
                maybe.kill()
        gateway.kill()
    if config.idle_seconds > 0 and "memory" in out:
        floor = idle_floor(identifiers, config, root, server_cpus, load_cpus)
        out["memory"]["idle_floor_cpu"] = floor
        log(f"  [chat] the same {len(identifiers)} sockets idle on the raw asyncio floor: "
            f"{floor:.1f}% of a core")  # fmt: skip
    return out


def idle_floor(
    identifiers: list[str], config: Config, root: Path, server_cpus: set[int],
    load_cpus: set[int],
) -> float:  # fmt: skip
    """What the same sockets cost idle, with their pings, on the raw asyncio floor
    (``benchmarks.floors.RawCable``: a Protocol per socket, one timer writing the same frame to
    every socket every 3 s, nothing else): the part of the gateway's idle cost that is the
    kernel's and the event loop's, measured as the gateway's was, pinned the same way."""
    port = free_port()
    server = procs.Child(
        procs.python("benchmarks.floors", "raw-cable", "--port", str(port)),
        root / "idle-floor.log", cpus=server_cpus,
    )  # fmt: skip
    spec = root / "listen-floor.json"
    spec.write_text(json.dumps({
        "port": port, "identifiers": identifiers, "customers": config.customers,
        "timeout": 60 + len(identifiers) / 50,
    }))  # fmt: skip
    with procs.started(server):
        procs.wait_http(port, server, "/health")
        listener = procs.Child(
            procs.python("benchmarks.chat_fleet", "listen", "--spec", str(spec)),
            root / "listen-floor.log", cpus=load_cpus, pipes=True,
        )  # fmt: skip
        with procs.started(listener):
            json.loads(listener.receive(90 + len(identifiers) / 50))  # every socket subscribed
            time.sleep(1.0)
            meter = procs.CpuMeter([server.pid]).start()
            time.sleep(config.idle_seconds)
            cpu = meter.stop()
            listener.send("quit")
    return cpu


def flame(
    listener: procs.Child,
    poster: procs.Child,
    server_pid: int,
    port: int,
    first: int,
    config: Config,
    root: Path,
    cpus: set[int],
) -> dict[str, Any]:
    """A flame graph of the server at the first rate; py-spy slows it, so not measured."""
    assert config.flame is not None
    rate = config.rates[0]
    spy = procs.flame_graph(server_pid, config.flame, config.seconds, root / "py-spy.log", cpus)
    with procs.started(spy):
        time.sleep(0.5)  # py-spy attaches
        r = phase(listener, poster, server_pid, port, "f", rate, config.seconds, first, config)
        assert spy.popen is not None
        spy.popen.wait(timeout=config.seconds + 30)
    return {"svg": config.flame.name, "rate": rate, "seconds": config.seconds,
            "p99_ms": r["p99_ms"]}  # fmt: skip


def phase(
    listener: procs.Child,
    poster: procs.Child,
    server_pid: int,
    port: int,
    name: str,
    rate: float,
    seconds: float,
    first: int,
    config: Config,
) -> dict[str, Any]:
    assert listener.popen is not None and poster.popen is not None
    listener.send(f"phase {name}")
    listener.receive(30)
    waits_before = server_waits.scrape(port)
    core = procs.CoreMeter(procs.cores()[0]).start()
    server = procs.CpuMeter([server_pid]).start()
    loop_cpu0 = procs.cpu_seconds(server_pid, thread=server_pid)  # the event loop's thread
    load = procs.CpuMeter([listener.pid, poster.pid]).start()
    poster.send(f"run {name} {rate:g} {seconds:g} {first}")
    posted = json.loads(poster.receive(seconds + 90))
    acked: list[int] = posted["acked"]
    expected = len(acked) * (1 + config.agents)
    # Drain: until every expected delivery arrived, or none came for 3 s.
    deadline, last, seen = time.monotonic() + 30, time.monotonic(), -1
    while time.monotonic() < deadline and time.monotonic() - last < 3:
        listener.send(f"count {name}")
        count = json.loads(listener.receive(30))["count"]
        if count >= expected:
            break
        if count != seen:
            seen, last = count, time.monotonic()
        time.sleep(0.05)
    server_cpu, load_cpu, core_busy = server.stop(), load.stop(), core.stop()
    loop_seconds = procs.cpu_seconds(server_pid, thread=server_pid) - loop_cpu0
    waits = server_waits.between(waits_before, server_waits.scrape(port))
    listener.send(f"report {name}")
    report = json.loads(listener.receive(120))
    messages: dict[str, list[int]] = report["messages"]
    full = (1 << config.agents) - 1
    lost = duplicated = wrong = 0
    for seq in acked:
        right, misrouted, agents, dups = messages.get(str(seq), (0, 0, 0, 0))
        lost += (0 if right else 1) + config.agents - bin(agents & full).count("1")
        duplicated += dups
        wrong += misrouted
    delays = sorted(report["delays_us"])
    failed = {k: v for k, v in posted["statuses"].items() if k != "200"}
    return {
        "rate": rate,
        "posted": posted["posted"],
        "acked": len(acked),
        "failed": sum(failed.values()),
        "failed_statuses": failed,
        "achieved_rate": posted["achieved_rate"],
        "aborted": posted["aborted"],
        "deliveries": len(delays),
        "p50_ms": pct(delays, 50) / 1000 if delays else math.nan,
        "p99_ms": pct(delays, 99) / 1000 if delays else math.nan,
        "max_ms": delays[-1] / 1000 if delays else math.nan,
        "ack_p50_ms": posted["ack_p50_ms"],
        "ack_p99_ms": posted["ack_p99_ms"],
        "sent_p50_ms": posted["sent_p50_ms"],
        "sent_p99_ms": posted["sent_p99_ms"],
        "lost": lost,
        "duplicated": duplicated,
        "misrouted": wrong,
        "sockets_closed": report["closed"],
        "server_cpu": server_cpu,
        # Server CPU per message acknowledged (all 21 deliveries): steady on a shared machine.
        "server_cpu_us_per_msg": server.seconds / len(acked) * 1e6 if acked else math.nan,
        # ... of which the event loop's thread (the rest: the SQLite writer, readers and
        # checkpointer, each a thread of its own on the same core).
        "loop_cpu_us_per_msg": loop_seconds / len(acked) * 1e6 if acked else math.nan,
        "load_cpu": load_cpu,
        "server_core_busy": core_busy,
        # Where the server kept the messages (its own histograms): name -> Waits as a dict.
        "server_waits": {k: w._asdict() for k, w in waits.items()},
    }
