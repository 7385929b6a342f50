"""The HTTP hot path: ``inboxgate serve`` against a raw ASGI app under the same uvicorn.

Servers, one after another in the same run, each pinned to core 0 (the load generator to the
other cores):

* ``inboxgate``     - ``inboxgate serve`` on SQLite (``synchronous=full``), the rate limits lifted
  for loopback (``INBOXGATE_RATE_LIMIT_SAFELIST``), the access log off;
* ``uvicorn floor`` - :func:`benchmarks.floors.app` under uvicorn with the gateway's options: it
  answers the gateway's own response bytes and does nothing else;
* ``granian floor`` - the same app under granian (when granian is installed).

Requests: ``GET`` the inbox, ``GET`` a contact, ``GET`` a conversation (with no messages), and
``POST`` a message, in turn to 40 conversations of 40 contacts, each with a unique ``echo_id``.
The load generator is ``wrk -t1`` (a Lua script formats the POSTs and prints the figures), or
:mod:`benchmarks.loadgen` when wrk is missing. Each figure: requests/s, p50, p99, at 32
connections, and a sweep of connection counts for one GET and the POST.

    python -m benchmarks --only http
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.server_helpers import HOST, GatewayProcess, free_port, server_env

from . import procs
from .seed import Seed, seed

REQUESTS = ["GET inbox", "GET contact", "GET conversation", "POST message"]
SWEPT = ["GET conversation", "POST message"]
POST_CONVERSATIONS = 40
SERVERS = ["inboxgate", "uvicorn floor", "granian floor"]

GATEWAY_ENV = {
    "INBOXGATE_SQLITE_SYNCHRONOUS": "full",
    "INBOXGATE_RATE_LIMIT_SAFELIST": "127.0.0.1",
    # The flood guard off (0), as the rate limits: a high limit instead would be counted up
    # to on every message (thousands of a conversation's last minute here; at most 200 rows
    # under the default limit), a cost no real conversation pays.
    "INBOXGATE_MESSAGES_PER_MINUTE": "0",
    "INBOXGATE_ACCESS_LOG": "0",
    "INBOXGATE_LOG_LEVEL": "warning",
}

WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

WRK_POST = r"""
local paths = {%s}
local tag = "%s"
local counter = 0
local thread_id = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
request = function()
  counter = counter + 1
  local echo = tag .. "-" .. thread_id .. "-" .. counter
  local body = '{"content":"bench message ' .. echo .. '","echo_id":"' .. echo .. '"}'
  return wrk.format("POST", paths[(counter %% #paths) + 1],
                    {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass
class Config:
    duration: int = 5  # seconds per point
    connections: int = 32  # the table's point
    sweep: list[int] = field(default_factory=lambda: [1, 8, 32, 64])
    warmup: bool = True
    granian: bool = True
    force_loadgen: bool = False  # use benchmarks.loadgen even when wrk is installed


@dataclass
class Targets:
    """The paths of one run; the same for every server (the floors answer any path)."""

    paths: dict[str, str]  # request name -> GET path
    post_paths: list[str]

    @classmethod
    def of(cls, s: Seed) -> Targets:
        reader, posters = s.customers[0], s.customers[1:]
        return cls(
            {
                "GET inbox": s.api(),
                "GET contact": s.contact_path(reader),
                "GET conversation": s.conversation_path(reader),
            },
            [s.conversation_path(c) + "/messages" for c in posters],
        )


def load_tool(config: Config) -> str:
    if not config.force_loadgen and shutil.which("wrk"):
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        return (done.stdout or done.stderr).split(" [")[0].strip() or "wrk"
    return "benchmarks.loadgen (asyncio, raw sockets)"


class Driver:
    """Runs the load generator against one server (closed loop, N connections, S seconds)."""

    def __init__(self, config: Config, targets: Targets, root: Path, load_cpus: set[int]) -> None:
        self.config = config
        self.targets = targets
        self.root = root
        self.load_cpus = load_cpus
        self.wrk = not config.force_loadgen and shutil.which("wrk") is not None
        self.runs = 0
        self.post_paths_file = root / "post-paths.json"
        self.post_paths_file.write_text(json.dumps(targets.post_paths))

    def run(self, port: int, request: str, connections: int, duration: int) -> dict[str, Any]:
        self.runs += 1
        tag = f"r{self.runs}{secrets.token_hex(3)}"
        if self.wrk:
            return self._wrk(port, request, connections, duration, tag)
        return self._loadgen(port, request, connections, duration, tag)

    def _wrk(self, port: int, request: str, conns: int, duration: int, tag: str) -> dict[str, Any]:
        script = self.root / f"wrk-{self.runs}.lua"
        if request.startswith("POST"):
            paths = ", ".join(json.dumps(p) for p in self.targets.post_paths)
            script.write_text(WRK_POST % (paths, tag) + WRK_DONE)
            url = f"http://{HOST}:{port}/"
        else:
            script.write_text(WRK_DONE)
            url = f"http://{HOST}:{port}{self.targets.paths[request]}"
        command = [
            *procs.taskset(self.load_cpus), "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
            "--timeout", "10s", "-s", str(script), url,
        ]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 60, check=False
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise procs.BenchError(f"wrk printed no figures: {done.stdout} {done.stderr}")
        r = json.loads(line.removeprefix("BENCH_JSON "))
        seconds = r["duration_us"] / 1e6
        return {
            "requests": r["requests"],
            "rps": r["requests"] / seconds if seconds else 0.0,
            "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000,
            "max_ms": r["max_us"] / 1000,
            "errors": r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"],
        }

    def _loadgen(
        self, port: int, request: str, conns: int, duration: int, tag: str
    ) -> dict[str, Any]:
        args = ["--port", str(port), "--connections", str(conns), "--duration", str(duration)]
        if request.startswith("POST"):
            args += ["--method", "POST", "--paths-file", str(self.post_paths_file), "--tag", tag]
        else:
            args += ["--method", "GET", "--path", self.targets.paths[request]]
        command = [*procs.taskset(self.load_cpus), *procs.python("benchmarks.loadgen", *args)]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 60, check=False,
            cwd=procs.ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            raise procs.BenchError(f"loadgen failed: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def capture_responses(base_url: str, targets: Targets, out: Path) -> None:
    """The gateway's answers, for the floors to send back byte for byte."""
    responses: dict[str, str] = {}
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for path in targets.paths.values():
            r = client.get(path)
            r.raise_for_status()
            responses[f"GET {path}"] = r.text
        r = client.post(targets.post_paths[0], json={"content": "capture", "echo_id": "capture"})
        r.raise_for_status()
        responses["POST *"] = r.text
    out.write_text(json.dumps(responses))


def warm_up(port: int, targets: Targets) -> None:
    """First requests pay for lazy imports and prepared statements: not measured."""
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=10) as client:
        for i in range(20):
            for path in targets.paths.values():
                client.get(path)
            echo = f"warm-{secrets.token_hex(4)}-{i}"
            path = targets.post_paths[i % len(targets.post_paths)]
            client.post(path, json={"content": "warm-up", "echo_id": echo})


def measure_server(
    name: str, pid: int, port: int, driver: Driver, config: Config, log: Callable[[str], None]
) -> dict[str, dict[str, dict[str, Any]]]:
    """request -> str(connections) -> figures. The server's CPU time per request is the figure
    that other work on a shared machine disturbs least."""
    warm_up(port, driver.targets)
    if config.warmup:
        for request in ("GET conversation", "POST message"):
            driver.run(port, request, 8, 1)
    out: dict[str, dict[str, Any]] = {}
    for request in REQUESTS:
        counts = sorted({config.connections, *(config.sweep if request in SWEPT else [])})
        out[request] = {}
        for conns in counts:
            writer = writer_cpu_seconds(port)
            cpu = procs.CpuMeter(procs.family(pid)).start()
            r = driver.run(port, request, conns, config.duration)
            r["server_cpu"] = cpu.stop()
            r["cpu_us_per_request"] = cpu.seconds * 1e6 / r["requests"] if r["requests"] else 0
            after = writer_cpu_seconds(port)
            if writer is not None and after is not None and r["requests"]:
                # Of the server's CPU per request, the SQLite writer thread's share.
                r["writer_cpu_us_per_request"] = (after - writer) * 1e6 / r["requests"]
            out[request][str(conns)] = r
            log(
                f"  [{name}] {request} c{conns}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} "
                f"ms, p99 {r['p99_ms']:.2f} ms, errors {r['errors']}, server CPU "
                f"{r['server_cpu']:.0f}%, {r['cpu_us_per_request']:.0f} CPU-us per request"
            )
    return out


_WRITER_CPU = re.compile(
    r'^inboxgate_store_writer_cpu_seconds_total\{engine="sqlite"\} (\S+)$', re.MULTILINE
)


def writer_cpu_seconds(port: int) -> float | None:
    """The gateway's SQLite writer thread's CPU seconds so far, from its /metrics (None for a
    floor, which has no such page)."""
    try:
        text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    match = _WRITER_CPU.search(text)
    return float(match.group(1)) if match else None


def start_gateway(root: Path, server_cpus: set[int], customers: int) -> tuple[GatewayProcess, Seed]:
    env = server_env(root, **GATEWAY_ENV)
    s = seed(env, customers=customers)
    gateway = GatewayProcess(root, env)
    gateway.start()
    procs.pin(gateway.pid, server_cpus)
    return gateway, s


def run(config: Config, root: Path, log: Callable[[str], None]) -> dict[str, Any]:
    server_cpus, load_cpus = procs.cores()
    result: dict[str, Any] = {
        "tool": load_tool(config),
        "connections": config.connections,
        "duration_s": config.duration,
        "servers": {},
        "notes": [],
    }
    gateway, s = start_gateway(root / "gateway", server_cpus, POST_CONVERSATIONS + 1)
    targets = Targets.of(s)
    responses = root / "floor-responses.json"
    driver = Driver(config, targets, root, load_cpus)
    with procs.started(gateway):
        log(f"inboxgate: pid {gateway.pid} on port {gateway.port}; load: {result['tool']}")
        capture_responses(gateway.base_url, targets, responses)
        measured = measure_server("inboxgate", gateway.pid, gateway.port, driver, config, log)
        result["servers"]["inboxgate"] = measured
    floors: list[tuple[str, list[str]]] = []
    port = free_port()
    floors.append(("uvicorn floor", procs.python("benchmarks.floors", "http", "--port", str(port))))
    granian = procs.tool("granian")
    if config.granian and granian:
        floors.append((
            "granian floor",
            [granian, "--interface", "asgi", "--http", "1", "--host", HOST, "--port", str(port),
             "--workers", "1", "--runtime-threads", "1", "--loop", "uvloop", "--no-ws",
             "--log-level", "warning", "benchmarks.floors:app"],
        ))  # fmt: skip
    elif config.granian:
        result["notes"].append("granian is not installed: no granian floor")
    for name, command in floors:
        child = procs.Child(
            command, root / f"{name.replace(' ', '-')}.log", cpus=server_cpus,
            env={"BENCH_FLOOR_RESPONSES": str(responses)}, group=True,
        )  # fmt: skip
        with procs.started(child):
            procs.wait_http(port, child)
            log(f"{name}: pid {child.pid} on port {port}")
            result["servers"][name] = measure_server(name, child.pid, port, driver, config, log)
    return result


def profile(
    root: Path, svg: Path, seconds: int, connections: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """A py-spy flame graph of the gateway under the POST load (wrk or the loadgen)."""
    if procs.tool("py-spy") is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    server_cpus, load_cpus = procs.cores()
    gateway, s = start_gateway(root / "profile", server_cpus, POST_CONVERSATIONS + 1)
    targets = Targets.of(s)
    driver = Driver(Config(), targets, root, load_cpus)
    with procs.started(gateway):
        warm_up(gateway.port, targets)
        spy = procs.flame_graph(gateway.pid, svg, seconds, root / "py-spy.log", load_cpus)
        with procs.started(spy):
            time.sleep(0.5)  # py-spy attaches
            load = driver.run(gateway.port, "POST message", connections, seconds)
            assert spy.popen is not None
            spy.popen.wait(timeout=seconds + 30)
    log(f"flame graph: {svg} ({load['rps']:.0f} req/s under py-spy)")
    if not svg.exists():
        return {"skipped": f"py-spy wrote no flame graph:{spy.tail()}"}
    return {"svg": svg.name, "rps": load["rps"], "seconds": seconds, "connections": connections}
