"""Real Redis for tests: the machine's server with a fresh key prefix per test, and a private
``redis-server`` subprocess for tests that kill connections or restart the server.

The shared server is ``INBOXGATE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). Off
CI, tests skip when it cannot be reached (or ``redis-server`` is missing); with ``CI=true``
they fail instead, so CI never silently skips the Redis suite. Every key and channel a test
makes starts with its prefix, and its keys are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from tests.server_helpers import HOST, free_port

REDIS_URL = os.environ.get("INBOXGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: Redis is required in CI")
    pytest.skip(f"{reason}; set CI=true to require")


def require(url: str) -> None:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2) as client:
            client.ping()
    except (redis.RedisError, OSError) as exc:
        unavailable(f"Redis not reachable at {url} ({exc!r})")


@pytest.fixture(name="redis_url")
def redis_url_fixture() -> str:
    require(REDIS_URL)
    return REDIS_URL


@pytest.fixture(name="prefix")
def prefix_fixture(redis_url: str) -> Iterator[str]:
    """A namespace no other test uses; its keys are deleted when the test ends."""
    prefix = f"inboxgate-test-{secrets.token_hex(6)}"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture(name="client")
async def client_fixture(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


class RedisServer:
    """A private ``redis-server`` (no persistence) on a free loopback port, killed by pid;
    ``restart`` keeps the port, so clients reconnect to the same URL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
            return
        args = [binary, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--dir", str(self.root),
                "--logfile", str(self.root / "redis.log")]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(host=HOST, port=self.port, socket_connect_timeout=0.5) as c:
                    c.ping()
                return
            except (redis.RedisError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
        # The port is free again once nothing listens there.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex((HOST, self.port)) != 0:
                    return
            time.sleep(0.05)

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port)


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[RedisServer]:
    server = RedisServer(root)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(name="own_redis")
def own_redis_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server
