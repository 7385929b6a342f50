"""PNG charts beside docs/benchmarks.md (matplotlib, the ``bench`` extra).

* ``http-post.png``, ``http-get.png``: requests/s and p99 against connections, each server;
* ``chat-latency.png``: POST-to-socket p50/p99/max against the posting rate;
* ``memory.png``: server memory growth against subscribed sockets, inboxgate and the floors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator

COLORS = {"inboxgate": "tab:blue", "uvicorn floor": "tab:gray", "granian floor": "tab:green",
          "bare": "tab:gray", "raw asyncio": "tab:green"}  # fmt: skip


def _finite(values: list[float]) -> bool:
    return any(not math.isnan(v) for v in values)


def http(result: dict[str, Any], request: str, path: Path) -> None:
    fig, (rps_ax, p99_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for server, requests in result["servers"].items():
        points = sorted((int(c), x) for c, x in requests.get(request, {}).items())
        if not points:
            continue
        conns = [c for c, _ in points]
        style = {"marker": "o", "label": server, "color": COLORS.get(server)}
        rps_ax.plot(conns, [x["rps"] for _, x in points], **style)
        p99_ax.plot(conns, [x["p99_ms"] for _, x in points], **style)
    counts = sorted({int(c) for s in result["servers"].values() for c in s.get(request, {})})
    for ax, label in ((rps_ax, "requests/s"), (p99_ax, "p99 latency (ms)")):
        _axes(ax, "connections", label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.xaxis.set_minor_locator(NullLocator())
    rps_ax.set_ylim(bottom=0)
    p99_ax.set_yscale("log")
    fig.suptitle(f"{request}: inboxgate against its floors ({result['tool']})")
    _save(fig, path)


def chat(result: dict[str, Any], path: Path) -> None:
    rates = result.get("rates", [])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [r["rate"] for r in rates]
    for key, label, marker in (("p50_ms", "p50", "o"), ("p99_ms", "p99", "s"),
                               ("max_ms", "max", "^")):  # fmt: skip
        ys = [r[key] for r in rates]
        if _finite(ys):
            ax.plot(xs, ys, marker=marker, label=label)
    ax.axhline(10, color="tab:red", linestyle="--", linewidth=1, label="10 ms")
    _axes(ax, "customer messages per second", "POST to socket (ms)")
    ax.set_yscale("log")
    ax.set_title(
        f"Chat workload: {result['customers']:,} customers + {result['agents']} agents, "
        f"{result['agents'] + 1} deliveries per message"
    )
    _save(fig, path)


def memory(fanout: dict[str, Any] | None, chat_result: dict[str, Any] | None, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if fanout and "servers" in fanout:
        for server, figures in fanout["servers"].items():
            points = sorted(
                (int(k.split("@")[1]), v / 1024) for k, v in figures.items()
                if k.startswith("rss_kib@")
            )  # fmt: skip
            if points:
                label = {"bare": "bare uvicorn server"}.get(server, server)
                ax.plot([0] + [c for c, _ in points], [0] + [m for _, m in points], marker="o",
                        label=f"{label} (json)", color=COLORS.get(server))  # fmt: skip
    m = (chat_result or {}).get("memory")
    if m:
        # Older results have the growth at every socket only.
        growth = m.get("growth_mib") or {
            str(m["sockets"]): m["rss_after_mib"] - m["rss_before_mib"]
        }
        points = sorted((int(n), mib) for n, mib in growth.items())
        ax.plot([0] + [n for n, _ in points], [0] + [mib for _, mib in points], marker="*",
                markersize=10, color="tab:purple",
                label="inboxgate, chat workload (ext-json)")  # fmt: skip
    _axes(ax, "subscribed sockets", "server RSS growth (MiB)")
    ax.set_title("Idle memory against subscribed sockets")
    _save(fig, path)


def _axes(ax: Axes, x: str, y: str) -> None:
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw(results: dict[str, Any], folder: Path) -> list[Path]:
    """Every chart the results allow; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    h = results.get("http", {})
    if "servers" in h:
        for request, name in (("POST message", "http-post.png"),
                              ("GET conversation", "http-get.png")):  # fmt: skip
            http(h, request, folder / name)
            written.append(folder / name)
    c = results.get("chat", {})
    if c.get("rates"):
        chat(c, folder / "chat-latency.png")
        written.append(folder / "chat-latency.png")
    f = results.get("fanout", {})
    if "servers" in f or c.get("memory"):
        memory(f, c, folder / "memory.png")
        written.append(folder / "memory.png")
    return written
