"""The docs' examples run as printed, against a live ``inboxgate serve --demo``.

* The shell blocks of docs/walkthrough.md, docs/agent-api.md and docs/webhooks.md (and the
  python files they save and run), each page in one ``bash -euo pipefail`` session from the
  demo's directory, as a reader pastes them (conventions in :mod:`tests.docs_helpers`);
  every block must exit 0 and every HTTP call must answer 2xx unless it prints its status.
* The README tour's curl lines, the same way.
* The README tour's "SDK in 10 lines": run as printed (the demo's URL and inbox put in); an
  agent answers through the agent API and the script prints the reply.

The demo runs with ``INBOXGATE_WEBHOOK_ALLOW_PRIVATE=1``, as docs/webhooks.md says to start it
for its local receiver. The shell finds ``python3`` and ``inboxgate`` of this test's
interpreter first on its PATH, as the quickstart's venv puts them there for a reader.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.docs_helpers import ROOT, Session, blocks, path_with, section
from tests.server_helpers import GatewayProcess, free_port

pytestmark = pytest.mark.slow

PAGES = ["docs/walkthrough.md", "docs/agent-api.md", "docs/webhooks.md"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("docs-demo")
    server = GatewayProcess(root, serve_args=("--demo",), INBOXGATE_WEBHOOK_ALLOW_PRIVATE="1")
    with server:
        yield server


@pytest.fixture(scope="module")
def shell_env(demo: GatewayProcess) -> dict[str, str]:
    """The reader's shell: the demo's settings (so ``inboxgate`` reaches its database), BASE
    pointing at it, and this interpreter as ``python3`` and ``inboxgate``."""
    bin_dir = demo.root / "bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python3"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    inboxgate = bin_dir / "inboxgate"
    inboxgate.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c '
        '"import sys; from gateway.cli import main; sys.exit(main())" "$@"\n'
    )
    python.chmod(0o755)
    inboxgate.chmod(0o755)
    env = dict(demo.env)
    env.update(
        BASE=demo.base_url,
        HOOK_PORT=str(free_port()),
        PATH=path_with([bin_dir], env),
        PYTHONPATH=str(ROOT),  # this checkout's gateway and client_sdk
    )
    return env


def run_session(session: Session, demo: GatewayProcess, env: dict[str, str]) -> str:
    assert session.shell_blocks, f"no shell block in {session.page}"
    done = session.run(demo.root, env)
    failure = session.failure(demo.root, done)
    assert failure is None, failure
    return done.stdout


@pytest.mark.parametrize("page", PAGES)
def test_every_shell_block_of_the_page_runs_in_order(
    page: str, demo: GatewayProcess, shell_env: dict[str, str]
) -> None:
    out = run_session(Session.of(ROOT / page), demo, shell_env)
    if page == "docs/walkthrough.md":
        # The websocket step heard its own message come back; the last step reopened.
        assert '"event":"message.created"' in out and "confirm_subscription" in out
        assert out.rstrip().endswith("open")
    if page == "docs/webhooks.md":
        assert "message_created: Is anyone there?" in out  # the signed delivery, verified


def test_the_readme_tour_curl_lines_run(demo: GatewayProcess, shell_env: dict[str, str]) -> None:
    out = run_session(Session.of(ROOT / "README.md", "## A five-minute tour"), demo, shell_env)
    assert '"content":"Hello!"' in out


def test_the_readme_sdk_example_prints_the_agent_reply(demo: GatewayProcess) -> None:
    tour = section((ROOT / "README.md").read_text(), "## A five-minute tour")
    [example] = [b.text for b in blocks(tour) if b.lang == "python"]
    info = demo.cli("inbox", "create", "--account", "1", "--name", "SDK tour")
    source = example.replace("http://127.0.0.1:8000", demo.base_url).replace(
        "INBOX_IDENTIFIER", info["identifier"]
    )
    agent = demo.cli(
        "user", "create", "--account", "1", "--email", "tour-agent@example.com",
        "--name", "Tour", "--role", "administrator",
    )  # fmt: skip
    headers = {"api_access_token": agent["access_token"]}
    proc = subprocess.Popen(
        [sys.executable, "-c", source], env={**demo.env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()])
    reader.start()
    try:
        with httpx.Client(base_url=demo.base_url, headers=headers, timeout=10.0) as http:
            conversation = wait_for_conversation(http, int(info["id"]), "Hello from the SDK")
            http.post(
                f"/api/v1/accounts/1/conversations/{conversation}/messages",
                json={"content": "We are on it"},
            ).raise_for_status()
        deadline = time.monotonic() + 30
        printed: list[str] = []
        while "Support: We are on it" not in printed:
            try:
                printed.append(lines.get(timeout=max(0.0, deadline - time.monotonic())).rstrip())
            except queue.Empty:
                raise AssertionError(f"the reply was not printed; output: {printed}") from None
    finally:
        proc.kill()  # the example listens until stopped, as a reader's would
        proc.wait(timeout=10)
        reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def wait_for_conversation(http: httpx.Client, inbox_id: int, text: str) -> int:
    """The id of the inbox's conversation whose messages hold ``text``, once it exists."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found: dict[str, Any] = http.get(
            "/api/v1/accounts/1/conversations", params={"inbox_id": inbox_id, "q": text}
        ).json()
        payload = found["data"]["payload"]
        if payload:
            return int(payload[0]["id"])
        time.sleep(0.1)
    raise AssertionError(f"no conversation with {text!r} in inbox {inbox_id}")
