"""``inboxgate chat`` driven in a real terminal (a pty): the customer types, an agent answers
through the agent API, and the terminal shows the reply and the agent typing, live."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sdk_helpers import ENV, Agent
from tests.server_helpers import CLI, GatewayProcess, gateway_server

pytestmark = pytest.mark.slow


class Terminal:
    """A process on a pty; ``expect`` reads its screen output until a pattern shows."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.screen = ""

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.screen)) is None:
            left = deadline - time.monotonic()
            assert left > 0, f"{pattern!r} never showed; the terminal says:\n{self.screen}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                with contextlib.suppress(OSError):  # EIO once the process is gone
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
        return found

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        status = self.proc.wait(15)
        os.close(self.master)
        return status


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GatewayProcess]:
    with gateway_server(tmp_path / "gateway", **ENV) as started:
        yield started


def test_inboxgate_chat_in_a_terminal(server: GatewayProcess, tmp_path: Path) -> None:
    inbox = server.provision_inbox(name="Front desk", csat=True)
    agent = Agent(server, inbox)
    session_file = tmp_path / "kiosk" / "session.json"
    command = [
        *CLI, "chat", inbox["identifier"], "--url", server.base_url, "--name", "Walk-in",
        "--session", str(session_file), "--outbox", str(tmp_path / "kiosk" / "outbox.db"),
    ]  # fmt: skip
    term = Terminal(command, server.env)
    try:
        conv = int(term.expect(r"Chatting with Front desk, conversation #(\d+)").group(1))
        term.expect(r"\[connected\]")
        term.type("Hi, is anyone there?")
        deadline = time.monotonic() + 15
        while not [m for m in agent.messages(conv) if m["content"] == "Hi, is anyone there?"]:
            assert time.monotonic() < deadline, term.screen
            time.sleep(0.05)
        agent.typing(conv)
        term.expect(r"\[Agent Smith is typing\.\.\.\]")
        # Its own line comes back on the socket too (possibly before the send returned): it
        # is on the screen already, as typed, and not printed again.
        assert "you: Hi, is anyone there?" not in term.screen
        agent.reply(conv, "Yes! How can I help?")
        term.expect(r"Agent Smith: Yes! How can I help\?")
        agent.resolve(conv)
        term.expect(r"\[conversation resolved\]")
        term.expect(r"\[survey\]")
        term.type("/rate 5 very helpful")
        term.expect(r"thank you for your rating")
        term.type("/quit")
        assert term.proc.wait(15) == 0
    finally:
        term.close()
    assert "Traceback" not in term.screen
    # The session was kept: a second run resumes the same contact and conversation.
    assert session_file.exists()
    again = Terminal(command, server.env)
    try:
        again.expect(rf"conversation #{conv}\b")
        again.expect(r"you: Hi, is anyone there\?")
        again.expect(r"Agent Smith: Yes! How can I help\?")
        again.type("/quit")
        assert again.proc.wait(15) == 0
    finally:
        again.close()
    survey = [m for m in agent.messages(conv) if m["content_type"] == "input_csat"]
    rating = survey[0]["content_attributes"]["submitted_values"]["csat_survey_response"]
    assert rating == {"rating": 5, "feedback_message": "very helpful"}
