"""Where the deployment's secret key (attachment links, stream ids) lives when
INBOXGATE_SECRET_KEY is not set: with PostgreSQL in the database, so every node sharing it
signs alike with nothing configured but the database URL (nodes starting together included);
with SQLite in DATA_DIR/secret_key, as before."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.attachments import FileStore
from gateway.domain import instance_secrets
from gateway.errors import NotFound
from gateway.settings import Settings
from gateway.store import SQLiteStore, Store
from gateway.store.postgres import PostgresStore
from gateway.store.records import Attachment
from gateway.store.sql import Op, rows
from tests.postgres_helpers import fresh_database

pytestmark = pytest.mark.anyio

ATTACHMENT = Attachment(
    id=1, message_id=1, account_id=1, file_type="file", extension="txt", file_name="a.txt",
    content_type="text/plain", file_size=2, storage_key="2026/01/01/abc-a.txt", width=None,
    height=None,
)  # fmt: skip


def stored_secrets() -> Op[list[tuple[Any, ...]]]:
    return (yield from rows("SELECT name, value FROM instance_secrets ORDER BY name"))


def node_settings(root: Path, database_url: str, **env: str) -> Settings:
    root.mkdir(parents=True)
    return Settings.from_env(
        {"INBOXGATE_DATABASE_URL": database_url, "INBOXGATE_DATA_DIR": str(root), **env}
    )


async def run_node(
    app: Starlette, stop: anyio.Event, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """The app's lifespan, entered and left in this task, open until ``stop``."""
    async with app.router.lifespan_context(app):
        task_status.started()
        await stop.wait()


def signer(key: str, root: Path) -> FileStore:
    """Files signed with ``key``: what a node using that key signs."""
    return FileStore(root / "attachments", key, 3600, 1024)


def signs_alike(a: Starlette | FileStore, b: Starlette, b_root: Path) -> bool:
    """A link signed by node (or signer) ``a`` opens the file on node ``b``."""
    files = a if isinstance(a, FileStore) else a.state.ctx.files
    link = files.link_builder("http://a")(ATTACHMENT)
    token = link.split("/attachments/", 1)[1].split("/", 1)[0]
    stored = b_root / "attachments" / ATTACHMENT.storage_key
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(b"hi")
    try:
        path, _, _ = b.state.ctx.files.resolve(token)
    except NotFound:  # a bad signature
        return False
    return bool(path == stored.resolve())


async def test_nodes_sharing_a_postgres_database_share_its_key(tmp_path: Path) -> None:
    async with fresh_database() as url:
        roots = [tmp_path / f"node{i}" for i in range(3)]
        settings = [node_settings(root, url) for root in roots]
        assert [s.secret_key for s in settings] == ["", "", ""]  # the database's, read at start
        apps = [create_app(s) for s in settings]
        stop = anyio.Event()
        async with anyio.create_task_group() as tasks:
            # Two nodes start together, racing to create the key; a third comes later.
            async with anyio.create_task_group() as starting:
                for app in apps[:2]:
                    starting.start_soon(tasks.start, run_node, app, stop)
            await tasks.start(run_node, apps[2], stop)
            ids = {app.state.realtime.hub.stream_ids("inbox:1") for app in apps}
            assert signs_alike(apps[0], apps[1], roots[1])
            assert signs_alike(apps[2], apps[0], roots[0])
            stored = await apps[0].state.ctx.store.read(stored_secrets)
            [(name, key)] = stored
            assert name == "secret_key" and len(key) >= 40 and len(ids) == 1
            # Every node signs with the stored key, given to what signs; its settings stay
            # as they were read (the lifespan changes no setting).
            for app, root in zip(apps, roots, strict=True):
                assert signs_alike(signer(key, tmp_path), app, root)
                assert app.state.ctx.settings.secret_key == ""
            stop.set()
        # Kept in the database only: no node wrote a key file.
        assert not any((root / "secret_key").exists() for root in roots)

        # A node restarting later, and one with a key of its own, which the database leaves be.
        again = create_app(node_settings(tmp_path / "later", url))
        own = create_app(node_settings(tmp_path / "own", url, INBOXGATE_SECRET_KEY="k" * 40))
        async with again.router.lifespan_context(again), own.router.lifespan_context(own):
            assert signs_alike(signer(key, tmp_path), again, tmp_path / "later")
            assert signs_alike(signer("k" * 40, tmp_path), own, tmp_path / "own")
            assert not signs_alike(own, again, tmp_path / "later")


async def test_sqlite_keeps_the_key_file(tmp_path: Path) -> None:
    root = tmp_path / "node"
    settings = node_settings(root, f"sqlite:///{tmp_path}/gw.db")
    key = (root / "secret_key").read_text().strip()
    assert settings.secret_key == key and len(key) >= 40
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert app.state.ctx.settings.secret_key == key
        assert await app.state.ctx.store.read(stored_secrets) == []
    assert node_settings(tmp_path / "again", f"sqlite:///{tmp_path}/gw.db").secret_key != key


async def race(stores: list[Store]) -> list[str]:
    for store in stores:
        await store.start()
    try:
        return await asyncio.gather(
            *(
                stores[i % len(stores)].write(
                    instance_secrets.get_or_create, "secret_key", f"candidate-{i}"
                )
                for i in range(12)
            )
        )
    finally:
        for store in stores:
            await store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_get_or_create_is_race_safe(tmp_path: Path, engine: str) -> None:
    if engine == "sqlite":
        found = await race([SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")])
    else:
        async with fresh_database() as url:
            found = await race([PostgresStore(url), PostgresStore(url)])
    assert len(set(found)) == 1 and found[0].startswith("candidate-")
