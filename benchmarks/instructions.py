"""Instructions per request, counted by callgrind: the hot path's cost in a figure that the
machine's other load does not move.

Requests per second on a shared 2-core VM move by 10-20% from one run to the next (and by up to
2x within an hour), so a change worth 3% cannot be seen in them. callgrind counts the
instructions each thread executes, which the same code, inputs and load give again to within
a percent (the writer's share moves a little with its batch sizes, which depend on timing).
System calls are not counted: what they cost the kernel stays for the wall-clock benchmarks.

The gateway runs under ``valgrind --tool=callgrind`` (about 50 times slower), seeded as the HTTP
benchmark seeds it (SQLite, ``synchronous=full``, limits lifted for loopback). After a warm-up
that is not counted, each phase sends ``--requests`` requests from ``--concurrency``
connections and reads the counts per thread: thread 1 is the event loop, the others are the
SQLite writer, readers and checkpointer. The raw ASGI floor (``benchmarks.floors``, uvicorn
with the gateway's options) is counted the same way, so each phase also gives the floor's
instructions over the gateway's: the throughput ratio a CPU-bound core would show, had system
calls no cost.

``--baseline REV`` counts another revision of the gateway as well (checked out into a
temporary git worktree, run from there), for an A/B of one change::

    python -m benchmarks.instructions                      # this tree and the floor
    python -m benchmarks.instructions --baseline HEAD~1    # ... and the commit before
    python -m benchmarks.instructions --requests 2000 --json out.json

Needs valgrind (Debian: ``apt-get install valgrind``). Every server listens on loopback and
is killed by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.server_helpers import HOST, free_port, server_env

from . import http_load, procs
from .seed import seed

PHASES = ["POST message", "GET conversation", "GET contact"]
WARM_UP = 50
START_TIMEOUT = 300.0  # imports under valgrind take a while


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path


def valgrind(out: Path, command: list[str]) -> list[str]:
    """``command`` under callgrind, counting nothing until told (imports and start-up are
    not what is measured), one output file per thread."""
    return [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
        f"--callgrind-out-file={out}/callgrind.%p", *command,
    ]  # fmt: skip


def thread_counts(out: Path, pid: int, part: int) -> dict[int, int]:
    """Instructions per thread in dump ``part`` of process ``pid``."""
    counts: dict[int, int] = {}
    for path in out.glob(f"callgrind.{pid}.{part}-*"):
        thread = int(path.name.rsplit("-", 1)[1])
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                counts[thread] = int(line.split()[1])
    return counts


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


async def send(base_url: str, request: str, targets: http_load.Targets, n: int, conc: int) -> None:
    """``n`` requests of the phase from ``conc`` connections; any error status fails the run."""
    tag = secrets.token_hex(4)
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:
                if request == "POST message":
                    path = targets.post_paths[i % len(targets.post_paths)]
                    body = {"content": f"counted {i}", "echo_id": f"{tag}-{i}"}
                    r = await client.post(path, json=body)
                else:
                    r = await client.get(targets.paths[request])
                r.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(conc)))


def measure(
    server: Server, targets: http_load.Targets, requests: int, conc: int, root: Path
) -> dict[str, dict[str, float]]:
    """Phase -> {"loop": instructions per request of thread 1, "others": of the rest}."""
    out = Path(tempfile.mkdtemp(dir=root))
    port = free_port()
    command = [*server.command, "--port", str(port)]
    child = procs.Child(
        valgrind(out, command), root / f"{server.name.replace(' ', '-')}.log",
        env=server.env, cwd=server.cwd,
    )  # fmt: skip
    base_url = f"http://{HOST}:{port}"
    result: dict[str, dict[str, float]] = {}
    with procs.started(child):
        procs.wait_http(port, child, "/health", timeout=START_TIMEOUT)
        for request in PHASES:
            asyncio.run(send(base_url, request, targets, WARM_UP, conc))
        for part, request in enumerate(PHASES, start=1):
            control("--instr=on", str(child.pid))
            asyncio.run(send(base_url, request, targets, requests, conc))
            control("--dump", str(child.pid))
            control("--instr=off", str(child.pid))
            counts = thread_counts(out, child.pid, part)
            loop = counts.pop(1, 0)
            result[request] = {"loop": loop / requests, "others": sum(counts.values()) / requests}
    shutil.rmtree(out, ignore_errors=True)
    return result


def gateway(name: str, env: dict[str, str], cwd: Path) -> Server:
    # Run from ``cwd``: ``python -c`` puts it first on the path, so its gateway is the one
    # imported (the editable install's finder comes after it).
    command = [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())",
               "serve", "--host", HOST]  # fmt: skip
    return Server(name, command, env, cwd)


MISSING = "valgrind is not installed (Debian: apt-get install valgrind)"


def suite(requests: int, conc: int, log: Any) -> dict[str, Any]:
    """For ``python -m benchmarks``: skipped, not failed, where valgrind is missing."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return {"skipped": MISSING}
    return run(requests, conc, None, log)


def run(requests: int, conc: int, baseline: str | None, log: Any) -> dict[str, Any]:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise procs.BenchError(MISSING)
    root = Path(tempfile.mkdtemp(prefix="inboxgate-instructions-"))
    try:
        seeded = root / "seeded"
        s = seed(
            server_env(seeded, **http_load.GATEWAY_ENV), customers=http_load.POST_CONVERSATIONS + 1
        )
        targets = http_load.Targets.of(s)

        def copy(name: str) -> dict[str, str]:
            """A copy of the seeded files for one server: each starts from the same state,
            and an older revision never opens a database a newer one has migrated."""
            shutil.copytree(seeded, root / name)
            return server_env(root / name, **http_load.GATEWAY_ENV)

        responses = root / "floor-responses.json"
        servers = [gateway("inboxgate", copy("current"), procs.ROOT)]
        results: dict[str, Any] = {"requests": requests, "concurrency": conc, "servers": {}}
        with contextlib.ExitStack() as stack:
            if baseline is not None:
                tree = stack.enter_context(procs.worktree(baseline))
                rev = subprocess.run(
                    ["git", "rev-parse", "--short", baseline], cwd=procs.ROOT, check=True,
                    capture_output=True, text=True,
                ).stdout.strip()  # fmt: skip
                servers.append(gateway(f"inboxgate at {rev}", copy("baseline"), tree))
            for server in servers:
                began = time.perf_counter()
                results["servers"][server.name] = measure(server, targets, requests, conc, root)
                log(f"{server.name}: counted in {time.perf_counter() - began:.0f} s")
            # The floor answers what the gateway answered (captured from an uncounted run).
            capture(copy("capture"), targets, responses, root)
            floor = Server(
                "uvicorn floor", procs.python("benchmarks.floors", "http"),
                {"BENCH_FLOOR_RESPONSES": str(responses)}, procs.ROOT,
            )  # fmt: skip
            results["servers"][floor.name] = measure(floor, targets, requests, conc, root)
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def capture(env: dict[str, str], targets: http_load.Targets, out: Path, root: Path) -> None:
    port = free_port()
    child = procs.Child(
        [*gateway("capture", env, procs.ROOT).command, "--port", str(port)],
        root / "capture.log", env=env,
    )  # fmt: skip
    with procs.started(child):
        procs.wait_http(port, child, "/health")
        http_load.capture_responses(f"http://{HOST}:{port}", targets, out)


def table(results: dict[str, Any]) -> str:
    servers = results["servers"]
    floor = servers["uvicorn floor"]
    lines = [
        f"Instructions per request (callgrind), {results['requests']} requests per phase at "
        f"concurrency {results['concurrency']}:",
        "",
        "| server | request | event loop | other threads | total | floor / total |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, phases in servers.items():
        for request, c in phases.items():
            total = c["loop"] + c["others"]
            f = floor[request]["loop"] + floor[request]["others"]
            lines.append(
                f"| {name} | {request} | {c['loop']:,.0f} | {c['others']:,.0f} | {total:,.0f} "
                f"| {f / total:.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--requests", type=int, default=1000, help="per phase (default 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    parser.add_argument("--baseline", metavar="REV", help="also count this git revision")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    try:
        results = run(args.requests, args.concurrency, args.baseline, print)
    except procs.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
