"""The processes a benchmark starts: pinned to cores, their CPU read from /proc, killed by pid.

Every process is started through :class:`Child` (or is a :class:`tests.server_helpers.
GatewayProcess`, which kills by pid too) and killed by its pid when the benchmark's block exits,
whatever happened. Nothing here looks for processes by name.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from tests.server_helpers import HOST

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A benchmark could not run; the message says what was seen."""


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in the load generator while it measures; one full collection
    after. A client holding a thousand sockets' objects stops reading for its collections (a
    full one took 38 ms, a middle one 14, in the chat workload's listener), and every frame
    that waited meanwhile in its socket buffers was charged to the server as latency. The load
    generator must not be what is measured: reference counting frees its garbage as it goes,
    the few reference cycles wait for the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


def cores() -> tuple[set[int], set[int]]:
    """(server cores, load generator cores): core 0 for the server, the others for the load,
    when the machine has two or more; else everyone shares what there is."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return set(available), set(available)
    return {available[0]}, set(available[1:])


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (``taskset -a -p``); threads started later inherit
    it from the thread that starts them."""
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task), cpus)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of ``pid`` so far (all its threads), from /proc/<pid>/stat; or
    of one of its threads (``thread``: its id; the main thread's is ``pid``)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        stat = Path(path).read_text()
    except OSError:
        return float("nan")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's worker processes)."""
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    queue += [
                        int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()
                    ]
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def raise_nofile() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def taskset(cpus: set[int]) -> list[str]:
    """A ``taskset -c`` prefix when taskset is installed, else nothing (pin after start)."""
    if shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", ",".join(str(c) for c in sorted(cpus))]


class Child:
    """A process we started: its output goes to a log file; ``kill`` sends SIGKILL to its pid."""

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        *,
        cpus: set[int] | None = None,
        env: dict[str, str] | None = None,
        pipes: bool = False,
        group: bool = False,
        cwd: Path = ROOT,
    ) -> None:
        """``group``: the child leads a process group of its own and ``kill`` ends the group
        (for servers that fork workers, such as granian). It runs in ``cwd`` (the project)."""
        self.log_path = log_path
        self._pending = bytearray()
        self._log: IO[bytes] = log_path.open("wb")
        prefix = taskset(cpus) if cpus else []
        self.popen: subprocess.Popen[bytes] | None = subprocess.Popen(
            [*prefix, *command], cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else self._log, stderr=self._log,
            start_new_session=group,
        )  # fmt: skip
        self.group = group
        self.pid = self.popen.pid
        if cpus and not prefix:
            pin(self.pid, cpus)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, line: str) -> None:
        assert self.popen is not None and self.popen.stdin is not None
        self.popen.stdin.write(line.encode() + b"\n")
        self.popen.stdin.flush()

    def receive(self, timeout: float) -> str:
        """The next line the child prints (its stdout is a pipe), within ``timeout`` seconds."""
        assert self.popen is not None and self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise BenchError(f"no answer from pid {self.pid} in {timeout:.0f} s{self.tail()}")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise BenchError(f"pid {self.pid} exited{self.tail()}")
            self._pending += chunk
        line, _, rest = bytes(self._pending).partition(b"\n")
        self._pending = bytearray(rest)
        return line.decode()

    def tail(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n--- " + str(self.log_path) + ":\n" + "\n".join(text.splitlines()[-20:])

    def kill(self) -> None:
        proc, self.popen = self.popen, None
        if proc is not None:
            if self.group:  # the group it leads has its pid as id: its workers go with it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            elif proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        self._log.close()


@contextlib.contextmanager
def started(*children: Any) -> Iterator[None]:
    """Kill each (by its pid) when the block exits, whatever happened."""
    try:
        yield
    finally:
        for child in children:
            child.kill()


def tool(name: str) -> str | None:
    """A command installed beside this Python (the venv's bin), else on the PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def flame_graph(pid: int, svg: Path, seconds: float, log_path: Path, cpus: set[int]) -> Child:
    """py-spy sampling ``pid`` for ``seconds`` into an SVG flame graph (wait for the child).

    Only the thread holding the GIL is sampled: the Python work that competes for the one
    core; idle pool threads (which py-spy does not always recognise as idle) and SQLite's
    GIL-free waits on disk stay out of the picture.

    ``--nonblocking``: py-spy reads the stacks without stopping the process. Stopped (its
    default), a thread halts at its next return from the kernel, so the samples pile up on
    lines that make system calls: under the POST load, the response's ``transport.write``
    took 17.7% of the samples stopped and 5.9% not, ``asyncio.get_running_loop`` (a
    ``getpid``) 8.8% and nothing visible, the SQLite writer's share of the GIL 3.8% and 31%;
    and the load ran a quarter slower under it (2,892 req/s against 3,897)."""
    pyspy = tool("py-spy")
    if pyspy is None:
        raise BenchError("py-spy is not installed (pip install py-spy)")
    svg.parent.mkdir(parents=True, exist_ok=True)
    return Child(
        [pyspy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         "--rate", "200", "--gil", "--nonblocking", "--format", "flamegraph",
         "--output", str(svg)],
        log_path, cpus=cpus,
    )  # fmt: skip


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def wait_http(port: int, child: Child, path: str = "/", timeout: float = 30.0) -> None:
    """Until ``GET path`` answers at all (any status)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                break
            with contextlib.suppress(httpx.TransportError):
                client.get(f"http://{HOST}:{port}{path}")
                return
            time.sleep(0.05)
    raise BenchError(f"server on port {port} did not start{child.tail()}")


def core_ticks(cpus: set[int]) -> tuple[int, int]:
    """(busy, total) jiffies of ``cpus`` so far, from /proc/stat."""
    busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            values = [int(v) for v in fields]
            total += sum(values[:8])  # user nice system idle iowait irq softirq steal
            busy += sum(values[:8]) - values[3] - values[4]
    return busy, total


class CoreMeter:
    """How busy some cores were between ``start`` and ``stop`` (anyone's work), in percent:
    set beside a pinned server's own CPU it shows how much of its core others took."""

    def __init__(self, cpus: set[int]) -> None:
        self.cpus = cpus
        self.busy0 = self.total0 = 0

    def start(self) -> CoreMeter:
        self.busy0, self.total0 = core_ticks(self.cpus)
        return self

    def stop(self) -> float:
        busy, total = core_ticks(self.cpus)
        spent = total - self.total0
        return 100 * (busy - self.busy0) / spent if spent > 0 else float("nan")


class CpuMeter:
    """CPU seconds of some pids between ``start`` and ``stop``, as a share of one core."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.t0 = 0.0
        self.cpu0 = 0.0
        self.seconds = 0.0

    def _cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def start(self) -> CpuMeter:
        self.t0, self.cpu0 = time.perf_counter(), self._cpu()
        return self

    def stop(self) -> float:
        """Percent of one core used since ``start`` (``seconds``: the CPU seconds)."""
        wall = time.perf_counter() - self.t0
        self.seconds = self._cpu() - self.cpu0
        return 100 * self.seconds / wall if wall > 0 else float("nan")


@contextlib.contextmanager
def worktree(rev: str, repo: Path = ROOT) -> Iterator[Path]:
    """``rev`` of ``repo`` checked out beside it (a temporary git worktree) for the time of the
    block: another version of the gateway to measure."""
    path = Path(tempfile.mkdtemp(prefix="inboxgate-baseline-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), rev],
        cwd=repo, check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=repo,
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(path, ignore_errors=True)
