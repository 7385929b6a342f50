"""The chat workload on two versions of the gateway, interleaved: is a change a gain?

This machine's speed moves by tens of percent within minutes (it is shared), and one run of
each version compares two moments as much as two versions: a pair of runs once gave a chat
p99 at 1,000 msg/s of 5.1 ms against 9.0 for a change that, over ten runs of each, was no
gain (if anything a loss). So the versions take turns, A B B A A B ..., each run on a fresh
database and server, and the report gives every rate's median and range over the runs, the
server's CPU a message (the steadiest figure) beside the latency. The same code on both
sides gave p99 ratios of 0.98 and 0.80 over three runs of each: smaller differences are
noise.

A version is a directory holding the project (the default candidate: this checkout, its
uncommitted changes included) or a git revision, checked out into a temporary worktree and
removed at the end. Each run is a child process importing the version's own code (its
``benchmarks.chat_load`` seeds, serves and measures), so the versions may differ anywhere.

    python -m benchmarks.ab --base HEAD [--candidate DIR|REV] [--rates 1000,2000] [--runs 3]
        [--seconds 10] [--customers 10000] [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import procs

# Run in the version's own tree: its chat workload, its gateway.
RUNNER = """
import json, sys
from pathlib import Path
from benchmarks import chat_load
spec = json.loads(sys.argv[1])
config = chat_load.Config(
    customers=spec["customers"], agents=spec["agents"], rates=spec["rates"],
    seconds=spec["seconds"], idle_seconds=0, memory_steps=[], flame=None,
)
out = chat_load.run(config, Path(spec["root"]), lambda line: print(line, file=sys.stderr))
print(json.dumps(out["rates"]))
"""

# Per rate, what the report compares: the phase's key, its heading and its format.
FIGURES = (
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("server_cpu_us_per_msg", "server CPU µs/msg", "{:.0f}"),
)


class AbError(Exception):
    pass


@dataclass(frozen=True)
class Version:
    label: str
    tree: Path
    what: str  # as given: a directory or a revision (and the commit it named)


@contextlib.contextmanager
def checked_out(label: str, given: str, repo: Path = procs.ROOT) -> Iterator[Version]:
    """``given`` as a tree to run: a directory as it is, a revision of ``repo`` in a temporary
    worktree (removed on the way out)."""
    if Path(given).is_dir():
        yield Version(label, Path(given).resolve(), given)
        return
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{given}^{{commit}}"],
        cwd=repo, capture_output=True, text=True,
    )  # fmt: skip
    if found.returncode != 0:
        raise AbError(f"{given!r} is neither a directory nor a git revision of {repo}")
    commit = found.stdout.strip()
    with procs.worktree(commit, repo) as tree:
        yield Version(label, tree, f"{given} ({commit[:10]})")


def order(runs: int) -> list[int]:
    """Which version (0: base, 1: candidate) runs at each turn: A B B A A B ..., so that a
    drift of the machine's speed over the session weighs on both alike."""
    turns: list[int] = []
    for i in range(runs):
        turns += [0, 1] if i % 2 == 0 else [1, 0]
    return turns


def run_once(version: Version, spec: dict[str, Any], log: Any) -> list[dict[str, Any]]:
    """One run of the chat workload on ``version``, in a child process on a fresh database.
    The child leads a process group of its own (the gateway and the load generators it
    starts are in it): a run that overstays its time, or is interrupted, is killed whole."""
    with tempfile.TemporaryDirectory(prefix="inboxgate-ab-") as root:
        env = {**os.environ, "PYTHONPATH": str(version.tree)}
        timeout = 180 + spec["customers"] / 50 + len(spec["rates"]) * (spec["seconds"] + 60)
        result = Path(root) / "phases.json"
        tail: list[str] = []
        with result.open("w") as stdout:
            child = subprocess.Popen(
                [sys.executable, "-c", RUNNER, json.dumps({**spec, "root": root})],
                cwd=version.tree, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
                start_new_session=True,
            )  # fmt: skip
            overstayed = threading.Timer(timeout, _kill_group, (child.pid,))
            overstayed.start()
            try:
                assert child.stderr is not None
                for line in child.stderr:  # progress, as it comes
                    tail = [*tail[-30:], line.rstrip()]
                    if "[chat]" in line and "msg/s:" in line:
                        log(f"  {version.label}: {line.strip()}")
                child.wait()
            finally:
                overstayed.cancel()
                _kill_group(child.pid)  # whatever the run left behind
                child.wait()
        if child.returncode != 0:
            raise AbError(f"{version.label} ({version.what}) failed:\n" + "\n".join(tail))
        phases: list[dict[str, Any]] = json.loads(result.read_text().strip().splitlines()[-1])
    return phases


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def summarize(
    labels: Sequence[str], runs: dict[str, list[list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """Per rate and version: each figure's median, lowest and highest over the runs, and the
    messages lost or duplicated in all of them."""
    rows: list[dict[str, Any]] = []
    rates = sorted({phase["rate"] for phases in runs[labels[0]] for phase in phases})
    for rate in rates:
        for label in labels:
            phases = [p for ps in runs[label] for p in ps if p["rate"] == rate]
            row: dict[str, Any] = {"rate": rate, "version": label, "runs": len(phases)}
            for key, _, _ in FIGURES:
                values = [p[key] for p in phases]
                row[key] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "all": values,
                }
            row["lost"] = sum(p["lost"] for p in phases)
            row["duplicated"] = sum(p["duplicated"] for p in phases)
            row["achieved_rate"] = statistics.median(p["achieved_rate"] for p in phases)
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], labels: Sequence[str]) -> str:
    """The summary as a Markdown table, with the candidate's medians as ratios to the base's."""
    head = ["msg/s", "version", "runs"]
    head += [f"{title} (median, range)" for _, title, _ in FIGURES]
    head += ["lost", "duplicated"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    by = {(r["rate"], r["version"]): r for r in rows}
    for rate in sorted({r["rate"] for r in rows}):
        for label in labels:
            r = by[rate, label]
            cells = [f"{rate:g}", label, str(r["runs"])]
            for key, _, form in FIGURES:
                f = r[key]
                low, high = form.format(f["min"]), form.format(f["max"])
                cells.append(f"{form.format(f['median'])} ({low}-{high})")
            cells += [str(r["lost"]), str(r["duplicated"])]
            lines.append("| " + " | ".join(cells) + " |")
        base, cand = by[rate, labels[0]], by[rate, labels[1]]
        ratios = [f"{rate:g}", f"{labels[1]} / {labels[0]}", ""]
        for key, _, _ in FIGURES:
            b = base[key]["median"]
            ratios.append(f"{cand[key]['median'] / b:.2f}" if b else "-")
        ratios += ["", ""]
        lines.append("| " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ab",
        description="The chat workload on two versions of the gateway, runs interleaved.",
    )
    parser.add_argument("--base", required=True, help="a directory or a git revision")
    parser.add_argument(
        "--candidate", default=str(procs.ROOT), help="a directory or a git revision (default: here)"
    )
    parser.add_argument("--rates", default="1000,2000", help="messages/s, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs of each version")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate and run")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write the runs and the summary here (JSON)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates: not a list of numbers: {args.rates!r}")
    if not args.rates or min(args.rates) <= 0:
        parser.error("--rates must name at least one positive rate")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Stopped by a signal, the run under way is killed whole (``run_once``'s finally), as on ^C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    spec = {
        "customers": args.customers, "agents": args.agents, "rates": args.rates,
        "seconds": args.seconds,
    }  # fmt: skip
    labels = ("base", "candidate")
    runs: dict[str, list[list[dict[str, Any]]]] = {label: [] for label in labels}
    began = time.perf_counter()
    try:
        with (
            checked_out("base", args.base) as base,
            checked_out("candidate", args.candidate) as candidate,
        ):
            versions = (base, candidate)
            print(f"base: {base.what}; candidate: {candidate.what}", flush=True)
            turns = order(args.runs)
            for n, which in enumerate(turns, 1):
                version = versions[which]
                print(f"run {n}/{len(turns)}: {version.label}", flush=True)
                runs[version.label].append(run_once(version, spec, lambda s: print(s, flush=True)))
    except AbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = summarize(labels, runs)
    print(f"\n{args.runs} runs of each, interleaved, in {time.perf_counter() - began:.0f} s\n")
    print(table(rows, labels))
    if args.out is not None:
        args.out.write_text(json.dumps({"spec": spec, "runs": runs, "summary": rows}, indent=1))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
