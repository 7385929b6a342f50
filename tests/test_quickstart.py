"""The README's quickstart, exactly as printed, on a fresh copy of the project.

The two lines of the first shell block under ``## Quickstart`` run in a temporary directory
holding the project's files (git's tracked and unignored files of this checkout): the first
creates a fresh venv and installs the project from PyPI (a minute or two), the second starts
``serve --demo``, moved to a free port through ``INBOXGATE_PORT`` only (the line itself uses
the default). The test waits for the gateway to answer, checks the demo page (its widget
pointed at the demo inbox) and the public inbox API, then stops the server by its process
group id and removes the copy.

Off CI it skips when PyPI cannot be reached; with ``CI=true`` it never skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.docs_helpers import ROOT, SHELL, blocks, section
from tests.server_helpers import HOST, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

INSTALL_TIMEOUT = 600.0
START_TIMEOUT = 60.0


def quickstart_lines() -> list[str]:
    quickstart = section((ROOT / "README.md").read_text(), "## Quickstart")
    first = next(b for b in blocks(quickstart) if b.lang in SHELL)
    return first.text.strip().splitlines()


def require_pypi() -> None:
    """Skip (off CI) when the package index cannot be reached: the install needs it."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        httpx.get(index.rstrip("/") + "/pip/", timeout=10.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the package index {index} is required in CI: {exc!r}")
        pytest.skip(f"no network to the package index {index} ({exc!r}); set CI=true to require")


# Without git (an unpacked archive): everything but what .gitignore names and git's own.
LOCAL_STATE = [
    ".git", ".venv", "venv", ".ci-venv", "__pycache__", "*.egg-info", "*.db", "*.db-wal",
    "*.db-shm", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "build",
    "dist",
]  # fmt: skip


def project_files() -> list[str]:
    """What a fresh checkout holds: git's tracked files, plus new ones it does not ignore."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        return [name for name in done.stdout.decode().split("\0") if name]
    ignore = shutil.ignore_patterns(*LOCAL_STATE)
    found: list[str] = []
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ignore(directory, dirs)]
        kept = set(files) - ignore(directory, files)
        found += [str(Path(directory, f).relative_to(ROOT)) for f in sorted(kept)]
    return [name for name in found if not name.startswith("data/")]  # /data/: the demo's


@pytest.fixture(name="checkout")
def checkout_fixture(tmp_path: Path) -> Iterator[Path]:
    """A copy of the project in a fresh directory, removed afterwards (the venv is large)."""
    copy = tmp_path / "inboxgate"
    for name in project_files():
        source = ROOT / name
        if source.is_file():  # deleted in the work tree but still in the index: skip it
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    try:
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def shell_env(**extra: str) -> dict[str, str]:
    """This environment without the gateway's settings (the quickstart uses the defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXGATE_")}
    env.update(extra)
    return env


def test_the_readme_quickstart_installs_and_serves_the_demo(checkout: Path) -> None:
    lines = quickstart_lines()
    assert len(lines) == 2, f"the quickstart is two commands, one a line: {lines}"
    install, serve = lines
    assert ".venv" in install and "serve --demo" in serve
    readme = (ROOT / "README.md").read_text()
    assert "python3-venv" in section(readme, "## Quickstart"), "the venv prerequisite is named"
    require_pypi()

    installed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", install], cwd=checkout, env=shell_env(),
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    assert installed.returncode == 0, f"{install}\n{installed.stdout[-3000:]}\n{installed.stderr}"

    port = free_port()
    log_path = checkout.parent / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", serve], cwd=checkout,
            env=shell_env(INBOXGATE_PORT=str(port), PYTHONUNBUFFERED="1"),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one below
        )  # fmt: skip
        try:
            base = f"http://{HOST}:{port}"
            with httpx.Client(base_url=base, timeout=5.0) as http:
                wait_until_up(http, server, log_path)
                demo = json.loads((checkout / "data" / "demo.json").read_text())
                inbox = demo["inbox_identifier"]
                page = http.get("/demo")
                assert page.status_code == 200 and "widget.js" in page.text
                assert inbox in page.text  # the widget is pointed at the demo inbox
                assert http.get("/static/widget.js").status_code == 200
                public = http.get(f"/public/api/v1/inboxes/{inbox}")
                assert public.status_code == 200 and public.json()["name"] == "Demo inbox"
            assert f"{base}/demo" in log_path.read_text()  # the banner names the real port
        finally:
            stop(server)


def wait_until_up(http: httpx.Client, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"serve exited {server.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if http.get("/health").status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"serve did not answer in {START_TIMEOUT} s:\n{log_path.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (bash and the gateway), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        try:
            server.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue
