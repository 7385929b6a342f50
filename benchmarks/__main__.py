"""Every benchmark against its floor, in one run; results into docs/benchmarks.md and charts.

    python -m benchmarks                    # everything (about 15 minutes)
    python -m benchmarks --quick            # fewer points, shorter phases, no cross-node
                                            # (under a minute)
    python -m benchmarks --only http,chat   # a subset: http, store, fanout, cross-node, chat,
                                            # wal, instructions
    python -m benchmarks --out /tmp/bench   # write /tmp/bench/benchmarks.md and its charts
    python -m benchmarks --profile          # also py-spy flame graphs: POST load, chat workload
    python -m benchmarks --profile before   # ... named flame-post-before.svg, flame-chat-...

The markdown goes to ``OUT/benchmarks.md`` (only between its results markers), the charts and
the flame graph to ``OUT/benchmarks/``, the raw figures to ``OUT/benchmarks/results.json``.
Every process a benchmark starts listens on loopback only and is killed by its pid.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import chat_load, http_load, instructions, procs, report, suites, wal_frames

NAMES = ["http", "store", "fanout", "cross-node", "chat", "wal", "instructions"]
# Starting PostgreSQL databases, a redis-server and three gateway nodes takes ~20 s on its own.
NOT_QUICK = {
    "cross-node": "not part of `--quick` (its cluster alone takes ~20 s to start); "
                  "`--quick --only cross-node` runs it",
    "instructions": "not part of `--quick` (the servers under valgrind take ~40 s); "
                    "`--quick --only instructions` runs it",
}  # fmt: skip
DEFAULT_OUT = procs.ROOT / "docs"


def log(text: str) -> None:
    print(text, flush=True)


def plan(quick: bool, chat_flame: Path | None) -> dict[str, Callable[[Path], dict[str, Any]]]:
    """What each benchmark runs in this mode; each gets a scratch directory."""
    fan: tuple[int, int, int, list[int]]  # sockets, messages, burst, memory curve steps
    cross: tuple[float, float, int, int]  # rate, seconds, burst, broker events
    if quick:
        http = http_load.Config(duration=1, sweep=[8, 32], warmup=False, granian=False)
        chat = chat_load.Config(
            customers=1000,
            rates=[100, 250],
            seconds=2,
            warmup=False,
            idle_seconds=1,
            memory_steps=[500],
        )
        store_writes, fan = 300, (100, 20, 20, [])
        cross = (50.0, 1.0, 50, 1000)
        counted = 100
        wal_points, wal_seconds = [40], 2
    else:
        http = http_load.Config()
        chat = chat_load.Config()
        store_writes, fan = 4000, (1000, 200, 50, [100, 250, 500])
        cross = (50.0, 10.0, 1000, 20000)
        counted = 1000
        wal_points, wal_seconds = [40, 1000], 4
    chat.flame = chat_flame
    return {
        "http": lambda root: http_load.run(http, root, log),
        "store": lambda root: suites.store(store_writes, 64, log),
        "fanout": lambda root: suites.fanout(*fan, root, log),
        "cross-node": lambda root: suites.cross_node(*cross, root, log),
        "chat": lambda root: chat_load.run(chat, root, log),
        "wal": lambda root: wal_frames.run(wal_points, wal_seconds, 6, root, log),
        "instructions": lambda root: instructions.suite(counted, 8, log),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer points, shorter phases")
    parser.add_argument("--only", help="comma-separated: " + ", ".join(NAMES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: docs/")
    parser.add_argument(
        "--profile", nargs="?", const="", metavar="NAME",
        help="record a py-spy flame graph of the POST load: flame-post[-NAME].svg",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep databases and server logs here")
    args = parser.parse_args(argv)
    selected = NAMES if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in selected if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    args.skipped = {}
    if args.quick and not args.only:
        args.skipped = dict(NOT_QUICK)
    args.selected = [n for n in NAMES if n in selected and n not in args.skipped]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    began = time.perf_counter()
    charts_dir = args.out / "benchmarks"
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "selected": list(args.selected),
        "not_run": args.skipped,
        "machine": report.machine(),
        "load_before": list(os.getloadavg()),
    }
    suffix = f"-{args.profile}" if args.profile else ""
    chat_flame = charts_dir / f"flame-chat{suffix}.svg" if args.profile is not None else None
    runs = plan(args.quick, chat_flame)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="inboxgate-bench-") as tmp:
        scratch = args.keep or Path(tmp)
        for name in args.selected:
            log(f"== {name}")
            t = time.perf_counter()
            root = scratch / name
            root.mkdir(parents=True, exist_ok=True)
            try:
                results[name] = runs[name](root)
            except Exception as exc:  # report it in the page, go on with the others
                failures += 1
                traceback.print_exc()
                results[name] = {"failed": f"{type(exc).__name__}: {exc}".splitlines()[0]}
            results[name]["elapsed_s"] = time.perf_counter() - t
            log(f"== {name}: {results[name]['elapsed_s']:.1f} s")
        if args.profile is not None:
            log("== profile")
            svg = charts_dir / f"flame-post{suffix}.svg"
            root = scratch / "profile"
            root.mkdir(parents=True, exist_ok=True)
            seconds = 4 if args.quick else 15
            try:
                results["profile"] = http_load.profile(root, svg, seconds, 32, log)
            except Exception as exc:
                failures += 1
                traceback.print_exc()
                results["profile"] = {"failed": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    results["load_after"] = list(os.getloadavg())
    results["elapsed_s"] = time.perf_counter() - began
    results["versions"] = report.versions(results.get("http", {}).get("tool", "wrk"))
    cross = results.get("cross-node", {})
    if cross.get("postgresql"):
        results["versions"]["PostgreSQL"] = cross["postgresql"]
        results["versions"]["Redis"] = cross["redis"]

    from . import charts  # matplotlib: the bench extra

    charts_dir.mkdir(parents=True, exist_ok=True)
    written = charts.draw(results, charts_dir)
    (charts_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    markdown = args.out / "benchmarks.md"
    report.write(markdown, report.render(results))
    log(f"wrote {markdown}, {len(written)} charts in {charts_dir} ({results['elapsed_s']:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
