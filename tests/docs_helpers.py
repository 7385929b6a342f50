"""Code blocks out of the project's markdown, and a runner that pastes them into one shell.

Conventions the docs follow so their examples can run (``tests/test_docs_examples.py``):

* every ```` ```sh ```` block of a runnable page runs, in order, in ONE ``bash -euo pipefail``
  session, so variables defined by one block are there for the next, as in a reader's shell;
  blocks that are only shown (a server to start, a sketch) use a bare ```` ``` ```` fence;
* a ```` ```python ```` block whose first line is ``# NAME.py`` is a file the reader saves:
  it is written to the session's directory before the shell starts, and a later shell block
  runs it;
* inside the session ``curl`` fails on an HTTP error status (``--fail-with-body``) unless the
  command asks for the status itself with ``-w``, so a block that "works" printing a 4xx body
  fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```([\w-]*)[ \t]*$")
SHELL = ("sh", "bash", "shell")
SAVED_AS = re.compile(r"^# (\S+\.py)$")

# Defined before the first block: the failing curl described above.
PRELUDE = """\
curl() {
  case " $* " in
    *" -w "*|*" --write-out "*) command curl "$@" ;;
    *) command curl --fail-with-body "$@" ;;
  esac
}
"""


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # of the opening fence, 1-based

    @property
    def saved_as(self) -> str | None:
        """The file name a python block asks to be saved as (its first line), if any."""
        first = self.text.split("\n", 1)[0]
        found = SAVED_AS.match(first)
        return found.group(1) if self.lang == "python" and found else None


def blocks(markdown: str) -> list[Block]:
    """Every fenced code block, in order."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"unclosed code block at line {start + 1}")
        found.append(Block(opening.group(1), "\n".join(body) + "\n", start + 1))
        i += 1
    return found


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` (a whole ``#`` line) up to the next heading of its level or
    above."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = markdown.splitlines()
    start = lines.index(heading) + 1
    end = len(lines)
    for n in range(start, len(lines)):
        hashes = len(lines[n]) - len(lines[n].lstrip("#"))
        if 0 < hashes <= level and lines[n][hashes : hashes + 1] == " ":
            end = n
            break
    return "\n".join(lines[start:end]) + "\n"


@dataclass
class Session:
    """One page's runnable blocks as a single bash session, and how it went."""

    page: Path
    script: str
    shell_blocks: list[Block]
    files: dict[str, str]

    @classmethod
    def of(cls, page: Path, heading: str | None = None) -> Session:
        """The blocks of ``page``, or of its section under ``heading``."""
        text = page.read_text()
        if heading is None:
            found = blocks(text)
        else:
            offset = text.splitlines().index(heading) + 1
            found = [Block(b.lang, b.text, b.line + offset) for b in blocks(section(text, heading))]
        shell = [b for b in found if b.lang in SHELL]
        files = {b.saved_as: b.text for b in found if b.saved_as}
        parts = [PRELUDE]
        for n, block in enumerate(shell):
            # The marker names the block that was running when the session stopped.
            parts.append(f"echo {n} > .docs-block\n{block.text}")
        parts.append(f"echo {len(shell)} > .docs-block\n")
        return cls(page, "".join(parts), shell, files)

    def run(
        self, cwd: Path, env: Mapping[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        for name, text in self.files.items():
            (cwd / name).write_text(text)
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.script],
            cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip

    def failure(self, cwd: Path, done: subprocess.CompletedProcess[str]) -> str | None:
        """None if every block ran to the end; else which block failed, and the output."""
        reached = int((cwd / ".docs-block").read_text())
        if done.returncode == 0 and reached == len(self.shell_blocks):
            return None
        block = self.shell_blocks[min(reached, len(self.shell_blocks) - 1)]
        where = f"the block at {self.page.relative_to(ROOT)}:{block.line}"
        return (
            f"{where} exited {done.returncode}:\n{block.text}\n"
            f"--- stdout (tail)\n{done.stdout[-4000:]}\n--- stderr (tail)\n{done.stderr[-4000:]}"
        )


def path_with(bin_dirs: Sequence[Path], env: Mapping[str, str]) -> str:
    return os.pathsep.join([*map(str, bin_dirs), env.get("PATH", os.defpath)])
