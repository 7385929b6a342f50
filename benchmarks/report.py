"""docs/benchmarks.md: the machine, the versions and every figure against its floor.

The generated part sits between two markers; whatever else the file holds (older figures, prose
written by hand) is left as it is. A missing file is created with a heading, how to run the
benchmarks, and the markers.
"""

from __future__ import annotations

import math
import platform
import shutil
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from . import instructions, server_waits

START = "<!-- benchmarks:results:start -->"
END = "<!-- benchmarks:results:end -->"

SKELETON = f"""# Benchmarks

Every figure is measured against a floor in the same run on the same machine: a raw ASGI app
under the same uvicorn for HTTP, a bare broadcast server and a raw asyncio pre-framed write
loop for `/cable`, one commit per write for the store, one SQLite node for several nodes. Run
them all with `python -m benchmarks` (about 7 minutes; `--quick` takes under a minute, `--only
http,chat` runs a subset, `--out DIR` writes elsewhere, `--profile` adds a py-spy flame graph of
the server under the POST load). The section below is rewritten by each run.

{START}
{END}
"""


# --- the machine and the versions -------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    import os

    return {
        "cpu": model or platform.processor() or "unknown",
        "cores": os.cpu_count() or 0,
        "memory_gib": mem_kib / 1024 / 1024,
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
    }


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(load_tool: str) -> dict[str, str]:
    found = {
        "Python": platform.python_version(),
        "uvicorn": _dist("uvicorn"),
        "starlette": _dist("starlette"),
        "msgspec": _dist("msgspec"),
        "uvloop": _dist("uvloop"),
        "httptools": _dist("httptools"),
        "SQLite": sqlite3.sqlite_version,
        "load generator": load_tool,
    }
    if _dist("granian") != "not installed":
        found["granian"] = _dist("granian")
    if shutil.which("py-spy"):
        done = subprocess.run(["py-spy", "--version"], capture_output=True, text=True, check=False)
        found["py-spy"] = done.stdout.strip().removeprefix("py-spy ")
    return found


# --- formatting ---------------------------------------------------------------------------------


def num(value: Any, fmt: str = "{:,.0f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return fmt.format(value)


def ratio(value: Any, floor: Any) -> str:
    if value is None or not floor or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value / floor:.2f}"


def table(head: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(head) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(head) + " |", "| " + " | ".join(marks) + " |"] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def failed(name: str, result: dict[str, Any]) -> list[str] | None:
    if "failed" in result:
        return [f"Not measured: {name} failed: `{result['failed']}`", ""]
    if "skipped" in result:
        return [f"Skipped: {result['skipped']}.", ""]
    return None


# --- the sections -------------------------------------------------------------------------------


def header(r: dict[str, Any]) -> list[str]:
    m, v = r["machine"], r["versions"]
    lines = [
        f"Measured {r['date']} ({'`--quick`' if r['quick'] else 'full run'}, "
        f"{r['elapsed_s']:.0f} s; {', '.join(r['selected'])}).",
        "",
    ]
    load = r.get("load_before"), r.get("load_after")
    lines += table(
        ["CPU", "cores", "memory", "kernel", "load average before / after"],
        [[m["cpu"], str(m["cores"]), f"{m['memory_gib']:.1f} GiB", m["kernel"],
          " / ".join(", ".join(f"{x:.1f}" for x in la) if la else "?" for la in load)]],
        "lrrll",
    )  # fmt: skip
    lines += [""]
    lines += table(list(v), [list(v.values())], "l" * len(v))
    for name, why in r.get("not_run", {}).items():
        lines += ["", f"{name}: {why}."]
    lines += [
        "",
        "The machine is shared: other work was running (see the load average), so absolute "
        "figures move between runs; the ratios compare servers measured minutes apart on the "
        "same machine. Servers are pinned to core 0, load generators to the other cores.",
        "",
    ]
    return lines


def http_section(r: dict[str, Any]) -> list[str]:
    lines = ["### HTTP hot path", ""]
    skip = failed("http", r)
    if skip:
        return lines + skip
    c = str(r["connections"])
    servers = r["servers"]
    gw, floor, gran = (servers.get(n, {}) for n in ("inboxgate", "uvicorn floor", "granian floor"))
    lines += [
        f"`inboxgate serve` (SQLite, `synchronous=full`) against the raw ASGI floor under the same "
        f"uvicorn options (`benchmarks/floors.py`), {r['connections']} connections, "
        f"{r['duration_s']} s per figure, load from {r['tool']}. ratio = inboxgate / floor "
        "(requests/s: higher is better). CPU µs/req: the server's CPU time per request (from "
        "/proc), the figure other work on a shared machine disturbs least; writer µs/req: the "
        "part of it spent by the SQLite writer thread (its own CPU clock, from /metrics); CPU "
        "ratio = inboxgate / floor (lower is better).",
        "",
    ]
    head = ["request", "inboxgate req/s", "p50 ms", "p99 ms", "floor req/s", "floor p50 ms",
            "floor p99 ms", "ratio", "CPU µs/req", "writer µs/req", "floor CPU µs/req",
            "CPU ratio"]  # fmt: skip
    if gran:
        head += ["granian floor req/s", "ratio to granian"]
    rows = []
    for request in gw:
        g, f = gw[request].get(c, {}), floor.get(request, {}).get(c, {})
        row = [
            request, num(g.get("rps")), num(g.get("p50_ms"), "{:.2f}"),
            num(g.get("p99_ms"), "{:.2f}"), num(f.get("rps")), num(f.get("p50_ms"), "{:.2f}"),
            num(f.get("p99_ms"), "{:.2f}"), ratio(g.get("rps"), f.get("rps")),
            num(g.get("cpu_us_per_request")), num(g.get("writer_cpu_us_per_request")),
            num(f.get("cpu_us_per_request")),
            ratio(g.get("cpu_us_per_request"), f.get("cpu_us_per_request")),
        ]  # fmt: skip
        if gran:
            x = gran.get(request, {}).get(c, {})
            row += [num(x.get("rps")), ratio(g.get("rps"), x.get("rps"))]
        rows.append(row)
    lines += table(head, rows)
    lines += ["", "By connection count (requests/s, p99 ms; ratio of requests/s to the floor):", ""]
    for request in [q for q in gw if len(gw[q]) > 1]:
        rows = []
        for conns in sorted(gw[request], key=int):
            g, f = gw[request][conns], floor.get(request, {}).get(conns, {})
            row = [
                f"{request}, {conns} conn.",
                num(g["rps"]),
                num(g["p99_ms"], "{:.1f}"),
                num(f.get("rps")),
                num(f.get("p99_ms"), "{:.1f}"),
                ratio(g["rps"], f.get("rps")),
            ]
            if gran:
                x = gran.get(request, {}).get(conns, {})
                row += [num(x.get("rps")), num(x.get("p99_ms"), "{:.1f}")]
            rows.append(row)  # fmt: skip
        sweep_head = ["", "inboxgate req/s", "p99", "floor req/s", "p99", "ratio"]
        if gran:
            sweep_head += ["granian req/s", "p99"]
        lines += [*table(sweep_head, rows), ""]
    errors = sum(x["errors"] for s in servers.values() for q in s.values() for x in q.values())
    lines += [f"Failed requests (non-2xx, socket errors, timeouts): {errors}.", ""]
    lines += [
        "![POST requests/s and p99 against connections](benchmarks/http-post.png)",
        "![GET requests/s and p99 against connections](benchmarks/http-get.png)",
        "",
    ]
    lines += [f"- {n}" for n in r.get("notes", [])]
    return lines


def store_section(r: dict[str, Any]) -> list[str]:
    lines = ["### Store writes", ""]
    skip = failed("store", r)
    if skip:
        return lines + skip
    d = r["drivers"]
    base = d["per-op"]["writes_per_s"]
    lines += [
        "The message-create operation (`benchmarks/store_writes.py`) from "
        f"{r['concurrency']} concurrent writers, SQLite `synchronous=full`; floor: one writer "
        "thread, one commit per write (`per-op`). Group commit runs more writes than the floors "
        "(at its rate the floors' count lasts a fifth of a second, mostly the run's start). The "
        "loop stall is the worst lateness of a 1 ms ticker on the event loop (and its p99); "
        "the last row is the same ticker with nothing else running, as long as group commit's "
        "run: what the machine alone does to it.",
        "",
    ]
    rows = [
        [name, num(x.get("writes", r["writes"])), num(x["writes_per_s"]),
         ratio(x["writes_per_s"], base), num(x["p50_ms"], "{:.2f}"), num(x["p99_ms"], "{:.2f}"),
         num(x["max_loop_stall_ms"], "{:.2f}"), num(x.get("loop_late_p99_ms"), "{:.2f}")]
        for name, x in (("group (inboxgate)", d["group"]), ("per-op (floor)", d["per-op"]),
                        ("inline", d["inline"]))
    ]  # fmt: skip
    alone = r.get("ticker_alone")
    if alone:
        rows.append(
            [f"ticker alone ({alone['seconds']:.1f} s)", "", "", "", "", "",
             num(alone["max_loop_stall_ms"], "{:.2f}"), num(alone["loop_late_p99_ms"], "{:.2f}")]
        )  # fmt: skip
    lines += table(
        ["driver", "writes", "creates/s", "ratio", "ack p50 ms", "ack p99 ms",
         "worst loop stall ms", "loop lateness p99 ms"], rows,
    )  # fmt: skip
    return [*lines, ""]


FANOUT_ROWS = [
    ("fps", "fan-out frames/s (burst)", "{:,.0f}"),
    ("mem_per_conn_kib", "idle memory per subscribed socket (KiB)", "{:.1f}"),
    ("open_rate", "open + subscribe rate (sockets/s)", "{:,.0f}"),
    ("first_p50_ms", "POST to first socket p50 (ms)", "{:.2f}"),
    ("lat_p50_ms", "POST to socket p50, all sockets (ms)", "{:.2f}"),
    ("lat_p99_ms", "POST to socket p99, all sockets (ms)", "{:.2f}"),
    ("last_p50_ms", "POST to last socket p50 (ms)", "{:.2f}"),
    ("frame_bytes", "frame size (bytes)", "{:.0f}"),
    ("lat_missing", "frames missing (latency phase)", "{:.0f}"),
    ("burst_missing", "frames missing (burst)", "{:.0f}"),
    ("dropped", "sockets lost", "{:.0f}"),
]


def fanout_section(r: dict[str, Any]) -> list[str]:
    lines = ["### Fan-out", ""]
    skip = failed("fanout", r)
    if skip:
        return lines + skip
    s = r["servers"]
    for x in s.values():
        if x.get("subscribe_s"):
            x["open_rate"] = r["connections"] / x["subscribe_s"]
    gw, bare, raw = s.get("inboxgate", {}), s.get("bare", {}), s.get("raw asyncio", {})
    lines += [
        f"{r['connections']} sockets (`actioncable-v1-json`) on one contact's stream "
        f"(`benchmarks/cable_fanout.py`): {r['messages']} messages one at a time, then a burst "
        f"of {r['burst']}. Floors: the bare broadcast server (`benchmarks/bare_broadcast.py`, raw "
        "ASGI under the same uvicorn, a naive send loop) and the raw asyncio floor "
        "(`benchmarks/floors.py`: no ASGI server, an asyncio Protocol per socket, each message's "
        "frame built once and written to every socket with one `transport.write`: the "
        "pre-framed write loop). ratio = inboxgate / floor.",
        "",
    ]
    rows = []
    for key, label, fmt in FANOUT_ROWS:
        g, b, w = gw.get(key), bare.get(key), raw.get(key)
        counted = key in ("lat_missing", "burst_missing", "dropped")  # no ratio
        rows.append([
            label, num(g, fmt), num(b, fmt), "" if counted else ratio(g, b),
            num(w, fmt) if w is not None else "", "" if counted else ratio(g, w),
        ])  # fmt: skip
    lines += table(["metric", "inboxgate", "bare server", "ratio", "raw asyncio", "ratio"], rows)
    lines += ["", "![Server memory against sockets](benchmarks/memory.png)", ""]
    return lines


def cross_section(r: dict[str, Any]) -> list[str]:
    lines = ["### Several nodes", ""]
    skip = failed("cross-node", r)
    if skip:
        return lines + skip
    from .cross_node import table as cross_table

    lines += [
        f"`benchmarks/cross_node.py`: {r['rate']:g} messages/s for {r['seconds']:g} s, a burst of "
        f"{r['burst']}, {r['events']} broker events; PostgreSQL {r['postgresql']}, Redis "
        f"{r['redis']}. ratio = deployment / one SQLite node.",
        "",
        cross_table(r["deployments"]),
        "",
    ]
    return lines


def chat_section(r: dict[str, Any]) -> list[str]:
    lines = ["### Chat workload", ""]
    skip = failed("chat", r)
    if skip:
        return lines + skip
    m = r.get("memory", {})
    lines += [
        f"{r['customers']:,} customer sockets (one per contact, `actioncable-v1-ext-json`) and "
        f"{r['agents']} agent sockets on the inbox; customers post at a steady rate for "
        f"{r['seconds']:g} s, each message to the poster's socket and the {r['agents']} agents' "
        f"({r['agents'] + 1} deliveries). Latency runs from the moment the POST was due (open "
        "loop) to the frame's arrival, over every delivery. CPU: percent of one core; \"its "
        "core busy\": the server's core, anyone's work (busy well above the server's CPU: other "
        'work on the machine took the core, and the latency shows it). "POST sent late": how '
        "long after its due time the poster sent a POST (its connection taken), which the "
        'latency includes: the load generator\'s own share of it. "Server CPU µs/msg": the '
        "server's CPU over the phase per message acknowledged (with its deliveries, and what "
        "idle sockets cost meanwhile), and the event loop thread's part of it (the rest is "
        "the SQLite writer's, readers' and checkpointer's threads, on the same core).",
        "",
    ]
    rows = [
        [f"{x['rate']:g}", num(x["achieved_rate"]) + (" (cut short)" if x["aborted"] else ""),
         num(x["p50_ms"], "{:.1f}"),
         num(x["p99_ms"], "{:.1f}"), num(x["max_ms"], "{:.1f}"), num(x["ack_p99_ms"], "{:.1f}"),
         num(x.get("sent_p99_ms"), "{:.1f}"),
         str(x["lost"]), str(x["duplicated"]), str(x["failed"]), num(x["server_cpu"]),
         num(x.get("server_core_busy")), num(x.get("server_cpu_us_per_msg")),
         num(x.get("loop_cpu_us_per_msg")), num(x["load_cpu"])]
        for x in r["rates"]
    ]  # fmt: skip
    lines += table(
        ["msg/s", "achieved", "p50 ms", "p99 ms", "max ms", "POST answered p99 ms",
         "POST sent late p99 ms", "lost",
         "duplicated", "failed POSTs", "server CPU %", "its core busy %",
         "server CPU µs/msg", "of which event loop", "load CPU %"], rows,
    )  # fmt: skip
    lines += waits_table(r["rates"])
    held = r.get("held_rate", 0)
    lines += [
        "",
        "Highest rate held at p99 <= 10 ms (nothing lost or duplicated): "
        + (f"**{held:g} msg/s**." if held else "**none** of the rates measured."),
        "",
    ]
    lines += [f"- {n}" for n in r.get("notes", [])]
    if m:
        lines += [
            f"- Memory: {m['sockets']:,} subscribed sockets opened in {m['open_s']:.1f} s; "
            f"server RSS {m['rss_before_mib']:.0f} -> {m['rss_after_mib']:.0f} MiB "
            f"({m['per_socket_kib']:.1f} KiB per socket)"
            + (f"; idle, with their pings: {m['idle_cpu']:.1f}% of a core" if "idle_cpu" in m
               else "")
            + (f" (the same sockets on the raw asyncio floor: {m['idle_floor_cpu']:.1f}%, "
               f"ratio {m['idle_cpu'] / m['idle_floor_cpu']:.2f})."
               if m.get("idle_floor_cpu") and "idle_cpu" in m else "."),
        ]  # fmt: skip
        growth = sorted((int(n), mib) for n, mib in m.get("growth_mib", {}).items())
        if len(growth) > 1:
            lines += [
                "- Server RSS growth, idle, as the sockets open: "
                + ", ".join(f"{mib:.1f} MiB at {n:,} ({mib * 1024 / n:.1f} KiB per socket)"
                            for n, mib in growth)
                + " (the memory chart's chat curve).",
            ]  # fmt: skip
    f = r.get("flame")
    if f:
        lines += [
            "- Flame graph (py-spy, the GIL holder, sampled without stopping the process; "
            f"one more {f['rate']:g} msg/s phase of "
            f"{f['seconds']:g} s, not measured above): "
            f"[benchmarks/{f['svg']}](benchmarks/{f['svg']})."
        ]
    lines += ["", "![Chat latency against posting rate](benchmarks/chat-latency.png)", ""]
    return lines


def waits_table(rates: list[dict[str, Any]]) -> list[str]:
    """Per rate, where the server kept the messages (``benchmarks.server_waits``)."""
    names = [n for n in server_waits.WATCHED if any(n in x.get("server_waits", {}) for x in rates)]
    if not names:
        return []
    rows = []
    for x in rates:
        waits = x.get("server_waits", {})
        row = [f"{x['rate']:g}"]
        for n in names:
            w = waits.get(n)
            row += (
                [f"<= {w['p99_le_ms']:g}", f"{w['over_10ms']:.1%}"] if w and w["observed"]
                else ["n/a", "n/a"]
            )  # fmt: skip
        rows.append(row)
    header = ["msg/s"]
    for n in names:
        header += [f"{n}: p99 ms", f"{n}: over 10 ms"]
    return [
        "",
        "Inside the server, from its own histograms over each phase (`/metrics` before and "
        "after): the POST (arrival to the end of its response), the store write in it "
        "(queueing for the writer, the batch, the commit, the loop's wake-up) and the "
        "transaction alone (one per batch of writes, BEGIN to COMMIT). A p99 is the histogram "
        "bucket it falls in; the share over 10 ms is exact.",
        "",
        *table(header, rows),
    ]


def wal_section(r: dict[str, Any]) -> list[str]:
    lines = ["### Pages a message writes", ""]
    skip = failed("wal", r)
    if skip:
        return lines + skip
    runs = r["runs"]
    names = list(dict.fromkeys(n for run in runs for n in run["by_owner"]))
    head = ["per commit", *(f"{run['conversations']:,} conversations" for run in runs)]
    rows = [
        ["POST message (req/s)", *(num(run["rps"]) for run in runs)],
        ["messages", *(num(run["messages_per_commit"], "{:.1f}") for run in runs)],
        [
            "(messages per conversation, by the end)",
            *(num(run.get("messages_per_conversation")) for run in runs),
        ],
        ["WAL frames (pages written)", *(num(run["frames_per_commit"], "{:.1f}") for run in runs)],
        ["WAL frames per message", *(num(run["frames_per_message"], "{:.1f}") for run in runs)],
    ]
    rows += [
        [f"of which `{name}`", *(num(run["by_owner"].get(name, 0.0), "{:.1f}") for run in runs)]
        for name in names
    ]
    return [
        *lines,
        f"`python -m benchmarks.wal_frames`: the POST load ({r['connections']} connections, "
        f"{r['seconds']} s) posting in turn to N conversations, and the SQLite WAL read while "
        "it runs: the pages each commit wrote (a frame each: two `pwrite` calls and a page "
        "copied, on the writer thread), by the table or index that owns the page. An index "
        "keyed by conversation or by stream writes a leaf per conversation a commit touches, "
        "once each conversation's entries span more than a page.",
        "",
        *table(head, rows),
        "",
    ]


def instructions_section(r: dict[str, Any]) -> list[str]:
    lines = ["### Instructions per request", ""]
    skip = failed("instructions", r)
    if skip:
        return lines + skip
    return [
        *lines,
        "`python -m benchmarks.instructions`: callgrind's count of the instructions each "
        "server's threads executed per request (the gateway's event loop, and its SQLite "
        "writer, readers and checkpointer), the same seeded database and requests for both. "
        "Other load on the machine does not move these counts (they repeat within about 2%); "
        "system calls are not counted (the figures above keep them). The last column is the "
        "floor's count over the gateway's: the ratio a core that spent nothing in the kernel "
        "would show.",
        "",
        *instructions.table(r).splitlines()[2:],
        "",
    ]


def profile_section(r: dict[str, Any]) -> list[str]:
    lines = ["### Flame graph", ""]
    skip = failed("profile", r)
    if skip:
        return lines + skip
    link = f"[benchmarks/{r['svg']}](benchmarks/{r['svg']})"
    return [
        *lines,
        "py-spy (the GIL holder, sampled without stopping the process), "
        f"{r['seconds']} s of the POST load at {r['connections']} connections "
        f"({r['rps']:.0f} req/s while sampled): {link}.",
        "",
    ]


def render(r: dict[str, Any]) -> str:
    lines = header(r)
    sections = [("http", http_section), ("store", store_section), ("fanout", fanout_section),
                ("cross-node", cross_section), ("chat", chat_section), ("wal", wal_section),
                ("instructions", instructions_section), ("profile", profile_section)]  # fmt: skip
    for name, section in sections:
        if name in r:
            lines += section(r[name])
    return "\n".join(lines).rstrip() + "\n"


def write(markdown: Path, body: str) -> None:
    """Replace what lies between the markers (creating the file or the markers if missing)."""
    text = markdown.read_text() if markdown.exists() else SKELETON
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(f"{head}{START}\n{body}{END}{tail}")
