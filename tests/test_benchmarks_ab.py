"""``python -m benchmarks.ab``: two versions of the gateway take turns under the chat
workload, and the report compares each rate's medians over the runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import ab

ROOT = Path(__file__).resolve().parent.parent


def phase(rate: float, p99: float, cpu: float, lost: int = 0) -> dict[str, Any]:
    return {
        "rate": rate, "p99_ms": p99, "p50_ms": p99 / 4, "server_cpu_us_per_msg": cpu,
        "lost": lost, "duplicated": 0, "achieved_rate": rate,
    }  # fmt: skip


def test_the_versions_take_turns_so_that_a_drift_weighs_on_both() -> None:
    assert ab.order(1) == [0, 1]
    assert ab.order(3) == [0, 1, 1, 0, 0, 1]
    assert ab.order(4).count(0) == ab.order(4).count(1) == 4


def test_each_rate_gets_medians_ranges_and_the_candidates_ratio() -> None:
    runs = {
        "base": [[phase(1000, 8.0, 700)], [phase(1000, 12.0, 650)], [phase(1000, 9.0, 680)]],
        "candidate": [
            [phase(1000, 4.0, 600, lost=1)], [phase(1000, 5.0, 620)], [phase(1000, 30.0, 640)],
        ],
    }  # fmt: skip
    rows = ab.summarize(("base", "candidate"), runs)
    base, candidate = rows
    assert base["p99_ms"] == {"median": 9.0, "min": 8.0, "max": 12.0, "all": [8.0, 12.0, 9.0]}
    assert candidate["p99_ms"]["median"] == 5.0  # one slow run does not make the figure
    assert (base["lost"], candidate["lost"]) == (0, 1)
    text = ab.table(rows, ("base", "candidate"))
    assert "| 1000 | base | 3 | 9.0 (8.0-12.0) |" in text
    assert "| 1000 | candidate / base |  | 0.56 | 0.56 | 0.91 |" in text


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=ab@example.com", "-c", "user.name=ab", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_a_revision_is_checked_out_for_the_runs_and_removed_after(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "version.txt").write_text("one\n")
    git(repo, "add", "version.txt")
    git(repo, "commit", "-q", "-m", "one")
    (repo / "version.txt").write_text("two\n")  # uncommitted: not in the revision
    with ab.checked_out("base", "HEAD", repo=repo) as version:
        assert (version.tree / "version.txt").read_text() == "one\n"
        assert version.what.startswith("HEAD (")
        assert git(repo, "worktree", "list").count("\n") == 1
    assert not version.tree.exists()
    assert git(repo, "worktree", "list").count("\n") == 0  # only the repository's own
    with ab.checked_out("candidate", str(repo), repo=repo) as here:
        assert (here.tree / "version.txt").read_text() == "two\n"  # a directory, as it is
    refused = pytest.raises(ab.AbError, match="neither a directory nor a git revision")
    with refused, ab.checked_out("base", "no-such-revision", repo=repo):
        pass


def test_bad_arguments_are_refused_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, reason in (
        (["--base", "HEAD", "--runs", "0"], "--runs must be at least 1"),
        (["--base", "HEAD", "--rates", "fast"], "not a list of numbers"),
        (["--base", "HEAD", "--rates", "0"], "at least one positive rate"),
    ):
        with pytest.raises(SystemExit) as exited:
            ab.parse(argv)
        assert exited.value.code == 2
        assert reason in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_versions_run_the_chat_workload_in_turns(tmp_path: Path) -> None:
    out = tmp_path / "ab.json"
    command = [
        sys.executable, "-m", "benchmarks.ab", "--base", str(ROOT), "--candidate", str(ROOT),
        "--runs", "1", "--customers", "20", "--agents", "2", "--rates", "20", "--seconds", "1",
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "run 1/2: base" in done.stdout and "run 2/2: candidate" in done.stdout
    assert "| 20 | candidate / base |" in done.stdout
    figures = json.loads(out.read_text())
    for label in ("base", "candidate"):
        [[only]] = figures["runs"][label]
        assert only["rate"] == 20 and only["lost"] == 0 and only["duplicated"] == 0
        assert 0 < only["p50_ms"] <= only["p99_ms"]
