"""``python -m benchmarks``: the runner writes its page and charts where it is told, and only
between the page's markers; the fallback load generator measures a real server."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import procs, report, server_waits, wal_frames

ROOT = Path(__file__).resolve().parent.parent


def test_results_replace_only_what_lies_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(
        f"# Benchmarks\n\nOlder figures, kept.\n\n{report.START}\nold results\n{report.END}\n"
        "\n## Notes written by hand\n"
    )
    report.write(page, "new results\n")
    text = page.read_text()
    assert "old results" not in text
    assert f"{report.START}\nnew results\n{report.END}" in text
    assert text.startswith("# Benchmarks\n\nOlder figures, kept.\n")
    assert text.endswith("\n## Notes written by hand\n")


def test_a_missing_page_is_created_with_how_to_run_and_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "benchmarks.md"
    report.write(page, "figures\n")
    text = page.read_text()
    assert text.startswith("# Benchmarks\n")
    assert "python -m benchmarks" in text
    assert text.index(report.START) < text.index("figures") < text.index(report.END)


def test_a_page_without_markers_gets_them_appended(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nMoved from the README.\n")
    report.write(page, "figures\n")
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nMoved from the README.\n")
    assert text.rstrip().endswith(f"{report.START}\nfigures\n{report.END}")


def test_the_load_generator_does_not_collect_while_it_measures() -> None:
    """Inside ``collector_paused`` no automatic collection runs (the cycles made there wait);
    after it, one full collection frees them and the collector is as it was before."""
    assert gc.isenabled()
    try:
        with procs.collector_paused():
            assert not gc.isenabled()
            cycle: list[object] = []
            cycle.append(cycle)
            threshold = gc.get_threshold()[0]
            kept = [[] for _ in range(3 * threshold)]  # past the threshold, still alive
            assert gc.get_count()[0] >= 3 * threshold  # no collection took the young ones
            del cycle, kept
        assert gc.isenabled()
        assert gc.get_count()[0] < threshold  # collected on the way out
        gc.disable()
        with procs.collector_paused():
            pass
        assert not gc.isenabled()  # a caller's disabled collector stays disabled
    finally:
        gc.enable()


@pytest.mark.slow
@pytest.mark.timeout(300)  # the run itself is given 280 s
def exposition(post: dict[str, int], write: dict[str, int]) -> str:
    """A /metrics text with cumulative buckets of the POST route, a GET route (not watched)
    and the store write."""
    route = "/public/api/v1/inboxes/{inbox_identifier}/contacts/{x}/conversations/{c}/messages"
    lines = [f'inboxgate_http_request_duration_seconds_bucket{{le="{le}",method="POST",'
             f'route="{route}"}} {n}.0' for le, n in post.items()]  # fmt: skip
    lines += [f'inboxgate_http_request_duration_seconds_bucket{{le="{le}",method="GET",'
              f'route="{route}"}} 1000.0' for le in post]  # fmt: skip
    lines += [f'inboxgate_store_write_seconds_bucket{{engine="sqlite",le="{le}"}} {n}.0'
              for le, n in write.items()]  # fmt: skip
    return "\n".join(["# HELP x y", *lines, 'inboxgate_store_write_seconds_sum{engine="sqlite"} 9'])


def test_where_the_server_kept_messages_is_read_from_its_histograms() -> None:
    """Between two scrapes: how many were observed, the shares over 5 and 10 ms, and the
    bucket the 99th percentile falls in; a GET route does not count as the POST."""
    les = ["0.001", "0.0025", "0.005", "0.01", "0.025", "+Inf"]
    before = server_waits.parse(exposition(dict(zip(les, [5, 5, 5, 5, 5, 5], strict=True)), {}))
    after = server_waits.parse(
        exposition(
            dict(
                zip(les, [5, 50, 85, 97, 105, 105], strict=True)
            ),  # 100 more: 80 <= 5 ms, 8 over 10 ms
            dict(zip(les, [10, 20, 30, 40, 50, 50], strict=True)),
        )
    )
    waits = server_waits.between(before, after)
    post = waits["POST a message"]
    assert post.observed == 100
    assert post.over_5ms == pytest.approx(0.20)
    assert post.over_10ms == pytest.approx(0.08)
    assert post.p99_le_ms == 25.0
    write = waits["store write"]
    assert (write.observed, write.p99_le_ms) == (50, 25.0)
    assert write.over_10ms == pytest.approx(0.2)
    assert waits["transaction"].observed == 0  # not in the text: nothing observed
    assert "POST a message p99 <= 25 ms, 8.0% over 10 ms" in server_waits.describe(waits)
    rows = report.waits_table(
        [{"rate": 250, "server_waits": {k: w._asdict() for k, w in waits.items()}}]
    )
    assert "| 250 | <= 25 | 8.0% | <= 25 | 20.0% | n/a | n/a |" in rows


def test_the_quick_run_writes_the_page_and_the_charts(tmp_path: Path) -> None:
    """``--quick`` runs every benchmark but the cross-node cluster (each must succeed: a
    benchmark that fails is reported in the page and the command exits 1)."""
    command = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (tmp_path / "benchmarks.md").read_text()
    results = page[page.index(report.START) : page.index(report.END)]
    assert "| CPU | cores | memory | kernel |" in results
    assert "| Python | uvicorn | starlette | msgspec |" in results
    for request in ("GET inbox", "GET contact", "GET conversation", "POST message"):
        row = re.search(rf"^\| {request} \| ([\d,]+) \|.*\| ([\d.]+) \|$", results, re.M)
        assert row is not None, f"no {request} row in:\n{results}"
        assert int(row.group(1).replace(",", "")) > 0
        assert float(row.group(2)) > 0  # the ratio to the floor
    for chart in ("http-post.png", "http-get.png"):
        assert (tmp_path / "benchmarks" / chart).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    figures = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert figures["selected"] == ["http", "store", "fanout", "chat", "wal"]
    for name in figures["selected"]:
        assert "failed" not in figures[name], (name, figures[name])
    # The fan-out against both floors: the raw asyncio write loop delivered every frame too,
    # the same frames as the bare server's.
    servers = figures["fanout"]["servers"]
    assert set(servers) == {"inboxgate", "bare", "raw asyncio"}
    for figures_of in servers.values():
        assert figures_of["fps"] > 0 and figures_of["burst_missing"] == 0
        assert figures_of["lat_missing"] == 0 and figures_of["dropped"] == 0
    assert servers["raw asyncio"]["frame_bytes"] == servers["bare"]["frame_bytes"]
    # The memory curve: the server's growth with half the customers' sockets open, then all.
    growth = figures["chat"]["memory"]["growth_mib"]
    assert set(growth) == {"500", str(figures["chat"]["memory"]["sockets"])}
    assert all(mib > 0 for mib in growth.values()), growth
    # Idle, against the same sockets on the raw asyncio floor (its CPU measured, not assumed).
    assert figures["chat"]["memory"]["idle_floor_cpu"] >= 0
    assert (
        "sockets on the raw asyncio floor" in results
        or not figures["chat"]["memory"]["idle_floor_cpu"]
    )
    for phase in figures["chat"]["rates"]:  # the poster's own lateness, beside the latency
        assert 0 <= phase["sent_p50_ms"] <= phase["sent_p99_ms"] <= phase["ack_p99_ms"]
        # The server's CPU a message, the event loop's thread a part of it (the writer's the
        # rest: it did write every message).
        assert 0 < phase["loop_cpu_us_per_msg"] < phase["server_cpu_us_per_msg"]
    assert "| server CPU µs/msg | of which event loop |" in results
    # The pages a message writes: every commit wrote message rows and their events.
    [wal] = figures["wal"]["runs"]
    assert wal["commits_seen"] > 0 and wal["messages_per_commit"] >= 1
    assert wal["by_owner"]["messages"] > 0 and wal["by_owner"]["events"] > 0
    assert wal["frames_per_commit"] == pytest.approx(sum(wal["by_owner"].values()))
    assert "| WAL frames per message |" in results
    for server in ("inboxgate", "uvicorn floor"):
        post = figures["http"]["servers"][server]["POST message"]
        assert set(post) == {"8", "32"}
        assert all(x["errors"] == 0 and x["requests"] > 0 for x in post.values())


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_fallback_load_generator_measures_a_server(tmp_path: Path) -> None:
    from benchmarks import procs
    from tests.server_helpers import free_port

    port = free_port()
    floor = procs.Child(
        procs.python("benchmarks.floors", "http", "--port", str(port)), tmp_path / "floor.log"
    )
    paths = tmp_path / "paths.json"
    paths.write_text(json.dumps(["/a/messages", "/b/messages"]))
    with procs.started(floor):
        procs.wait_http(port, floor)
        command = procs.python(
            "benchmarks.loadgen", "--port", str(port), "--connections", "4", "--duration", "0.5",
            "--method", "POST", "--paths-file", str(paths),
        )  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["requests"] > 10
    assert figures["errors"] == 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_instructions_are_counted_per_thread_and_against_the_floor(tmp_path: Path) -> None:
    """``python -m benchmarks.instructions`` runs the gateway and the floor under callgrind
    and counts each phase's instructions per request."""
    if shutil.which("valgrind") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("valgrind is required in CI (.ci/run installs it)")
        pytest.skip("valgrind is not installed")
    out = tmp_path / "counts.json"
    command = [sys.executable, "-m", "benchmarks.instructions", "--requests", "30",
               "--concurrency", "2", "--json", str(out)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=230)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    servers = json.loads(out.read_text())["servers"]
    assert set(servers) == {"inboxgate", "uvicorn floor"}
    for request in ("POST message", "GET conversation"):
        ours, floor = servers["inboxgate"][request], servers["uvicorn floor"][request]
        assert 0 < floor["loop"] < ours["loop"], (request, servers)
        assert floor["others"] == 0
    # The message's durable write is the SQLite writer's: counted on a thread of its own.
    assert servers["inboxgate"]["POST message"]["others"] > 0
    assert "| inboxgate | POST message |" in done.stdout


def test_the_wal_reader_counts_committed_frames_per_generation_and_names_their_pages(
    tmp_path: Path,
) -> None:
    """Frames of one generation (its header's salts) up to its last commit; a later copy of a
    generation counted once; a checkpoint's restart starts another; each page named by the
    table or index that owns it."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("SELECT name FROM dbstat").fetchall()
    except sqlite3.OperationalError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"SQLite {sqlite3.sqlite_version} has no dbstat table; CI's has")
        pytest.skip(f"SQLite {sqlite3.sqlite_version} was built without its dbstat table")
    finally:
        probe.close()
    db = tmp_path / "w.db"
    wal = Path(f"{db}-wal")
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, k TEXT, body TEXT)")
        conn.execute("CREATE INDEX items_k ON items (k)")

        def commit(rows: int) -> None:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO items (k, body) VALUES (?, ?)",
                [(f"k{i:06d}", "x" * 300) for i in range(rows)],
            )
            conn.execute("COMMIT")

        commit(1)
        first = wal_frames.read_wal(wal.read_bytes())
        commit(40)  # several table and index pages
        second = wal_frames.read_wal(wal.read_bytes())
        assert first is not None and second is not None
        assert (first.commits, second.commits) == (3, 4)  # two CREATEs, then the inserts
        assert second.pages[: len(first.pages)] == first.pages and len(second.pages) > 5
        # A frame half written (no commit frame yet) is not counted.
        frame = struct.pack(">II", 2, 0) + second.salt + bytes(8) + bytes(second.page_size)
        torn = wal.read_bytes()[: 32 + len(second.pages) * (24 + second.page_size)] + frame
        half = wal_frames.read_wal(torn)
        assert half is not None and half.pages == second.pages
        conn.execute("PRAGMA wal_checkpoint(RESTART)")
        commit(1)  # the WAL starts over: new salts, the old frames after it ignored
        third = wal_frames.read_wal(wal.read_bytes())
        assert third is not None and third.salt != second.salt and third.commits == 1
        generations = wal_frames.merge([first, second, third])
        assert sorted(len(g.pages) for g in generations) == sorted(
            [len(second.pages), len(third.pages)]
        )
        with wal_frames.copied(db.read_bytes(), wal.read_bytes()) as copy:
            named = wal_frames.owners(copy)
        counted = wal_frames.by_owner(generations, named)
        assert {"items", "items_k", "sqlite_schema"} <= set(counted)
        assert sum(counted.values()) == sum(len(g.pages) for g in generations)
    finally:
        conn.close()
    with pytest.raises(ValueError, match="not a SQLite WAL"):
        wal_frames.read_wal(b"\0" * 64)
