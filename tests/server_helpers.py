"""A real gateway process for tests: ``inboxgate serve`` under uvicorn on a free loopback port.

Use :func:`gateway_server` (a context manager) or :class:`GatewayProcess` directly when a test
needs to kill and restart the process on the same database::

    with gateway_server(tmp_path) as server:
        inbox = server.provision_inbox(csat=True)
        httpx.get(server.url(f"/public/api/v1/inboxes/{inbox['identifier']}"))

The database (``INBOXGATE_DATABASE_URL``) and data directory (``INBOXGATE_DATA_DIR``) live under
the given directory; ``INBOXGATE_SECRET_KEY`` is fixed so attachment links survive a restart.
Provisioning runs the ``inboxgate`` command with the same environment. Whatever happens, the
server is killed by its pid when the context exits; its output is kept in ``server-N.log`` and
shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from client_sdk.http_core import identifier_hash

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
# Runs gateway.cli's click group, exactly what the ``inboxgate`` console script runs.
CLI = [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())"]


def free_port() -> int:
    """A port that was free on loopback a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_env(root: Path, **overrides: str) -> dict[str, str]:
    """The environment of a gateway whose files live under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOXGATE_")}
    env.update(
        {
            "INBOXGATE_DATABASE_URL": f"sqlite:///{root / 'db' / 'inboxgate.db'}",
            "INBOXGATE_DATA_DIR": str(root / "data"),
            "INBOXGATE_SECRET_KEY": "test-secret-key-for-real-socket-tests",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


class ServerFailed(RuntimeError):
    """The gateway process did not come up (or a provisioning command failed)."""


class GatewayProcess:
    """One gateway under uvicorn; ``start``/``kill``/``restart`` keep the same database.

    ``pid`` is the uvicorn process itself (``--workers 1`` runs in-process, no supervisor), so
    ``os.kill(server.pid, SIGKILL)`` is a real crash of the server.
    """

    def __init__(
        self,
        root: Path,
        env: Mapping[str, str] | None = None,
        *,
        serve_args: tuple[str, ...] = (),
        **overrides: str,
    ) -> None:
        self.root = root
        self.serve_args = serve_args  # extra ``inboxgate serve`` options, e.g. ("--demo",)
        self.root.mkdir(parents=True, exist_ok=True)
        self.env = dict(env) if env is not None else server_env(root, **overrides)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self._log: Any = None
        self.log_path = root / "server-0.log"

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def ws_url(self, path: str = "/cable") -> str:
        return f"ws://{HOST}:{self.port}{path}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerFailed("the server is not running")
        return self.proc.pid

    @property
    def database_path(self) -> Path:
        return Path(self.env["INBOXGATE_DATABASE_URL"][len("sqlite:///") :])

    # -- provisioning (the ``inboxgate`` command, same environment) ---------------------------

    def cli(self, *args: str) -> dict[str, Any]:
        """Run ``inboxgate ARGS --json`` and return its JSON object."""
        command = [*CLI, *args, "--json"]
        done = subprocess.run(command, env=self.env, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace")
            raise ServerFailed(f"{shlex.join(args)} exited {done.returncode}: {stderr}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def provision_inbox(
        self,
        *,
        account: str = "Acme",
        name: str = "Support",
        hmac_mandatory: bool = False,
        csat: bool = False,
        account_id: int | None = None,
    ) -> dict[str, Any]:
        """Create an account (unless ``account_id`` is given) and an API inbox in it; returns
        the inbox as ``inboxgate inbox create --json`` prints it (id, identifier, hmac_token)."""
        if account_id is None:
            account_id = int(self.cli("account", "create", account)["id"])
        args = ["inbox", "create", "--account", str(account_id), "--name", name]
        if hmac_mandatory:
            args.append("--hmac-mandatory")
        if csat:
            args.append("--csat")
        return self.cli(*args)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT, *, port: int | None = None) -> None:
        """Start on ``port`` (default: a fresh free port) and wait until ``/health`` answers.
        A browser test restarts on the same port: the page keeps the gateway's URL."""
        if self.proc is not None and self.proc.poll() is None:
            raise ServerFailed("already running")
        for _attempt in range(3):  # another process may grab the port between probe and bind
            self.port = port or free_port()
            self.log_path = self.root / f"server-{self.starts}.log"
            self.starts += 1
            self._log = self.log_path.open("wb")
            command = [*CLI, "serve", "--host", HOST, "--port", str(self.port), *self.serve_args]
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                if self._wait_healthy(timeout):
                    return
            except BaseException:
                self.kill()
                raise
            if "address already in use" not in self.log().lower():
                break
        output = self.log()
        self.kill()
        raise ServerFailed(f"gateway did not become healthy on {self.base_url}:\n{output}")

    def _wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    return False
                with contextlib.suppress(httpx.TransportError):
                    if client.get(self.url("/health")).status_code == 200:
                        return True
                time.sleep(0.05)
        return False

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to the server's pid (unless it already exited) and reap it, with SIGKILL
        if it lingers. Returns the exit status (``-9`` after a SIGKILL), None if nothing ran.
        Idempotent."""
        proc, self.proc = self.proc, None
        status = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, sig)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)
            status = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def stop(self) -> int | None:
        """A graceful stop (SIGTERM, as a process manager would); returns the exit status."""
        return self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> GatewayProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@contextlib.contextmanager
def gateway_server(
    root: Path, env: Mapping[str, str] | None = None, **overrides: str
) -> Iterator[GatewayProcess]:
    """A started gateway whose files live under ``root``; always killed (by pid) on exit.

    ``overrides`` are extra ``INBOXGATE_*`` variables, e.g.
    ``gateway_server(tmp_path, INBOXGATE_RATE_LIMIT_PER_IP="0")``.
    """
    server = GatewayProcess(root, env, **overrides)
    try:
        server.start()
        yield server
    finally:
        server.kill()


def hmac_hex(key: str, identifier: str) -> str:
    """``identifier_hash`` as a customer backend computes it (with the SDK)."""
    return identifier_hash(key, identifier)
