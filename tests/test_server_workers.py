"""``inboxgate serve --workers 2`` under a SIGTERM: every websocket, on every worker, hears
``{"type":"disconnect","reason":"server_restart","reconnect":true}`` before its close, as in
the single process (``test_cable_handshake.test_shutdown_sends_server_restart``).

Two workers need PostgreSQL and Redis (``serve`` refuses SQLite and the in-process broker).
Which worker accepted a socket is read from ``/proc`` (the worker process that holds the
server end of the connection), so the test knows it has a socket on each of the two.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient
from tests.cable_socket_helpers import expect_disconnect
from tests.postgres_helpers import fresh_database_sync
from tests.server_helpers import GatewayProcess, server_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)"),
]

RESTART = '{"type":"disconnect","reason":"server_restart","reconnect":true}'
MAX_SOCKETS = 40  # opened until both workers hold one; the kernel picks the accepting worker


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def server_end_inode(server_port: int, client_port: int) -> int | None:
    """The socket inode of the server end of a loopback connection (``/proc/net/tcp``)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == server_port and (
            int(remote.split(":")[1], 16) == client_port and inode
        ):
            return inode
    return None


def holder(pids: set[int], inode: int) -> int | None:
    """Which of ``pids`` has the socket ``inode`` open."""
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


@pytest.fixture(name="workers")
def workers_fixture(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[GatewayProcess]:
    """``inboxgate serve --workers 2`` on a fresh PostgreSQL database and a Redis prefix."""
    with fresh_database_sync() as database_url:
        env = server_env(
            tmp_path,
            INBOXGATE_DATABASE_URL=database_url,
            INBOXGATE_REDIS_URL=redis_url,
            INBOXGATE_REDIS_PREFIX=prefix,
        )
        with GatewayProcess(tmp_path, env, serve_args=("--workers", "2")) as server:
            yield server


async def test_sigterm_to_the_supervisor_says_server_restart_on_every_worker(
    workers: GatewayProcess,
) -> None:
    supervisor = workers.pid
    async with contextlib.AsyncExitStack() as stack:
        by_worker: dict[int, list[CableClient]] = {}
        for _ in range(MAX_SOCKETS):
            cable = await stack.enter_async_context(
                CableClient.connect(workers.ws_url("/cable"), protocol=cp.JSON)
            )
            await cable.expect(cp.Welcome)  # accepted: its worker holds the server end
            inode = server_end_inode(workers.port, cable.ws.local_address[1])
            assert inode is not None
            worker = holder(children(supervisor), inode)
            assert worker is not None, "no worker process holds the socket"
            by_worker.setdefault(worker, []).append(cable)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, f"all {MAX_SOCKETS} sockets went to one worker"
        sockets = [cable for group in by_worker.values() for cable in group]
        goodbyes: list[cp.WireFrame | None] = []

        async def hear_restart(cable: CableClient) -> None:
            await expect_disconnect(cable, timeout=20)
            goodbyes.append(cable.last_raw)
            await cable.closed()

        async with anyio.create_task_group() as tg:
            for cable in sockets:
                tg.start_soon(hear_restart, cable)
            os.kill(supervisor, signal.SIGTERM)
    assert goodbyes == [RESTART] * len(sockets)
    status = await anyio.to_thread.run_sync(workers.stop)  # reaps the supervisor
    assert status == 0, workers.log()
