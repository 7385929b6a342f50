"""The HTTP message path under wrk: ``inboxgate serve`` against a raw ASGI floor, in one run.

Both servers run under uvicorn with the gateway's options (uvloop, httptools), pinned to core 0
with every thread; wrk (``-t1``) runs on core 1. The gateway is on SQLite (``--sync``, full by
default) with the rate limit and the flood guard lifted for loopback. Scenarios:

* ``GET inbox``       ``GET /public/api/v1/inboxes/{id}``  (floor: a GET answering JSON);
* ``GET messages``    a conversation's messages page        (floor: the same GET);
* ``POST message``    round robin over ``--conversations`` conversations, a fresh ``echo_id``
  each (floor: a POST whose JSON body is decoded and answered).

For each: requests/s, p50/p99 latency, and the ratio to the floor measured in the same round;
``--rounds`` rounds alternate gateway and floor. Also the server's CPU time per request (its
user + system time from /proc over the run, divided by the requests answered) and the floor's
CPU per request over the gateway's: the throughput ratio a dedicated core would show, which
other load on a shared machine disturbs far less than requests/s. Needs ``wrk`` on the PATH.

    python -m benchmarks.http_path [--seconds 5] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec

from tests.server_helpers import HOST, GatewayProcess, free_port, server_env

# -- the floor: a raw ASGI app -----------------------------------------------------------------

_BODY = msgspec.json.encode({"id": 1, "content": "hello", "message_type": 0, "created_at": 0})


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if body:
        msgspec.json.decode(body)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": _BODY})


RAW_SERVER = (
    "import uvicorn; uvicorn.run('benchmarks.http_path:raw_app', host='{host}', port={port}, "
    "loop='uvloop', http='httptools', access_log=False, log_level='warning')"
)


def pin(pid: int, core: int) -> None:
    """Every thread of ``pid`` (the store's threads included) on ``core``."""
    if (os.cpu_count() or 1) < 2:
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), {core})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def raw_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [sys.executable, "-c", RAW_SERVER.format(host=HOST, port=port)]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(url + "/", timeout=1)
                break
            time.sleep(0.05)
        pin(proc.pid, 0)
        yield url, proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


# -- wrk ---------------------------------------------------------------------------------------

POST_SCRIPT = """
paths = {%s}
counter = 0
prefix = "%s"
request = function()
  counter = counter + 1
  local path = paths[(counter %% #paths) + 1]
  local body = '{"content":"hello from wrk","echo_id":"' .. prefix .. counter .. '"}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
"""


def wrk(
    url: str, seconds: float, connections: int, script: Path | None, pid: int
) -> dict[str, float]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script is not None:
        command += ["-s", str(script)]
    if (os.cpu_count() or 1) >= 2:
        command = ["taskset", "-c", "1", *command]
    cpu = cpu_seconds(pid)
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rate": rate,
        "cpu_us": cpu / max(1, done) * 1e6,
        "p50": _latency(out, "50%"),
        "p99": _latency(out, "99%"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def _latency(out: str, label: str) -> float:
    found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if found is None:
        return float("nan")
    value, unit = float(found.group(1)), found.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# -- the run -----------------------------------------------------------------------------------


def setup(gateway: GatewayProcess, conversations: int) -> tuple[str, str, list[str]]:
    inbox = gateway.provision_inbox(account="Bench", name="Bench")["identifier"]
    api = f"/public/api/v1/inboxes/{inbox}"
    paths = []
    with httpx.Client(base_url=gateway.base_url, timeout=10) as client:
        for _ in range(conversations):
            contact = client.post(f"{api}/contacts", json={"name": "Bench"}).json()
            base = f"{api}/contacts/{contact['source_id']}/conversations"
            conv = client.post(base).json()
            paths.append(f"{base}/{conv['id']}/messages")
        client.post(paths[0], json={"content": "first"})
    return api, paths[0], paths


Result = tuple[float, float, float, float, float]  # req/s, ratio, p99, CPU us/req, CPU ratio


def run(args: argparse.Namespace, root: Path) -> dict[str, list[Result]]:
    env = server_env(
        root, INBOXGATE_SQLITE_SYNCHRONOUS=args.sync, INBOXGATE_MESSAGES_PER_MINUTE="0",
        INBOXGATE_RATE_LIMIT_SAFELIST="127.0.0.1",
    )  # fmt: skip
    gateway = GatewayProcess(root / "gateway", env)
    results: dict[str, list[Result]] = {}
    try:
        gateway.start()
        api, messages, paths = setup(gateway, args.conversations)
        pin(gateway.pid, 0)
        script = root / "post.lua"
        quoted = ", ".join(f'"{p}"' for p in paths)
        scenarios = [
            ("GET inbox", api, None),
            ("GET messages", messages, None),
            ("POST message", paths[0], POST_SCRIPT % (quoted, f"r{os.getpid()}-")),
        ]
        with raw_server() as (floor, floor_pid):
            for round_no in range(args.rounds):
                for label, path, lua in scenarios:
                    if lua is not None:
                        script.write_text(lua.replace('prefix = "', f'prefix = "{round_no}-'))
                    lua_path = script if lua is not None else None
                    got = wrk(
                        gateway.base_url + path, args.seconds, args.connections, lua_path,
                        gateway.pid,
                    )  # fmt: skip
                    base = wrk(floor + path, args.seconds, args.connections, lua_path, floor_pid)
                    if got["errors"]:
                        print(f"  {label}: {got['errors']:.0f} non-2xx answers", flush=True)
                    ratio, cpu_ratio = got["rate"] / base["rate"], base["cpu_us"] / got["cpu_us"]
                    results.setdefault(label, []).append(
                        (got["rate"], ratio, got["p99"], got["cpu_us"], cpu_ratio)
                    )
                    print(
                        f"round {round_no + 1} {label:13} {got['rate']:8.0f} req/s "
                        f"(floor {base['rate']:6.0f}, ratio {ratio:.3f}) "
                        f"p50 {got['p50']:6.2f} ms p99 {got['p99']:6.2f} ms | CPU "
                        f"{got['cpu_us']:5.0f} us/req (floor {base['cpu_us']:4.0f}, "
                        f"ratio {cpu_ratio:.3f})",
                        flush=True,
                    )
    finally:
        gateway.kill()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="http-path-") as tmp:
        results = run(args, Path(tmp))
    print(f"\nmedian of {args.rounds} rounds, {args.connections} connections, sync={args.sync}")
    for label, values in results.items():
        rate, ratio, p99, cpu, cpu_ratio = (
            statistics.median(v[i] for v in values) for i in range(5)
        )
        print(
            f"{label:13} {rate:8.0f} req/s  ratio to floor {ratio:.3f}  p99 {p99:.2f} ms  "
            f"CPU {cpu:.0f} us/req (CPU ratio to floor {cpu_ratio:.3f})"
        )


if __name__ == "__main__":
    main()
