"""The public reads' view cache (``services.view_cache``): an answer is served from memory
only while the database is unchanged, so no write, by this process or another connection,
is ever followed by a stale answer."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.services import view_cache
from gateway.services.view_cache import ViewCache
from gateway.store import SQLiteStore
from gateway.store.sql import execute
from tests.routes_helpers import Env
from tests.store_contract import make_world

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def _rename(contact_id: int, name: str) -> Any:
    yield from execute("UPDATE contacts SET name = ? WHERE id = ?", name, contact_id)


async def test_a_commit_empties_the_cache(sqlite_store: SQLiteStore) -> None:
    world = await make_world(sqlite_store)
    cache = ViewCache(sqlite_store)
    version, held = cache.lookup("k")
    assert version is not None and held is None
    cache.keep(version, "k", "answer")
    assert cache.lookup("k") == (version, "answer")
    await sqlite_store.write(_rename, world.contact.id, "Bob")
    after, held = cache.lookup("k")
    assert held is None and after != version


async def test_a_commit_of_another_connection_empties_the_cache(
    sqlite_store: SQLiteStore,
) -> None:
    """Another process sharing the file (the CLI, say) is seen too, from the next turn of the
    loop: the requests of one turn share one read of the version."""
    world = await make_world(sqlite_store)
    cache = ViewCache(sqlite_store)
    version, _ = cache.lookup("k")
    cache.keep(version, "k", "answer")
    other = sqlite3.connect(sqlite_store.path, isolation_level=None)
    try:
        other.execute("UPDATE contacts SET name = 'Carol' WHERE id = ?", (world.contact.id,))
    finally:
        other.close()
    assert cache.lookup("k") == (version, "answer")  # the same turn: received before it
    await asyncio.sleep(0)
    assert cache.lookup("k")[1] is None


async def test_the_version_is_read_once_per_turn_of_the_loop(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = 0
    real = sqlite_store.data_version

    def counted() -> object | None:
        nonlocal reads
        reads += 1
        return real()

    monkeypatch.setattr(sqlite_store, "data_version", counted)
    cache = ViewCache(sqlite_store)
    for _ in range(3):
        cache.lookup("k")
    assert reads == 1
    await asyncio.sleep(0)
    cache.lookup("k")
    assert reads == 2


async def test_an_answer_read_before_a_newer_version_is_not_kept(
    sqlite_store: SQLiteStore,
) -> None:
    """A read that awaited across a commit that another lookup already saw must not land in
    the cache of the newer state."""
    world = await make_world(sqlite_store)
    cache = ViewCache(sqlite_store)
    old, _ = cache.lookup("k")
    await sqlite_store.write(_rename, world.contact.id, "Dave")
    new, _ = cache.lookup("other")
    cache.keep(old, "k", "stale")
    assert cache.lookup("k") == (new, None)


async def test_a_closed_store_caches_nothing(sqlite_store: SQLiteStore) -> None:
    cache = ViewCache(sqlite_store)
    await sqlite_store.close()
    assert cache.lookup("k") == (None, None)
    cache.keep(None, "k", "answer")
    assert cache.lookup("k") == (None, None)


# -- through the public API ------------------------------------------------------------------


async def _get(env: Env, url: str) -> dict[str, Any]:
    r = await env.client.get(url)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _counting_links(env: Env, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the attachment links the app builds from now on."""
    files_store = env.app.state.ctx.files
    made = 0
    builder = files_store.link_builder

    def counting(base: str) -> Callable[[Any], str]:
        build = builder(base)

        def link(attachment: Any) -> str:
            nonlocal made
            made += 1
            return build(attachment)

        return link

    monkeypatch.setattr(files_store, "link_builder", counting)
    return lambda: made


async def test_a_contact_is_never_stale_after_a_write(env: Env) -> None:
    contact = await env.contact(name="Alice")
    url = env.contact_url(contact["source_id"])
    assert (await _get(env, url))["name"] == "Alice"
    assert (await _get(env, url))["name"] == "Alice"  # from the cache
    r = await env.client.patch(url, json={"name": "Alice B"})
    assert r.status_code == 200
    assert (await _get(env, url))["name"] == "Alice B"
    await env.store.write(_rename, contact["id"], "Alice C")  # the agent side, say
    assert (await _get(env, url))["name"] == "Alice C"


async def test_a_contact_is_rendered_once_then_answered_byte_for_byte(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A widget's poll (nothing to prove) is answered from the cache; a request that asks to
    prove is rendered afresh, and the cache is keyed by the path as sent."""
    from gateway.services import contacts as service

    rendered = 0
    render = service.presenters.public_contact

    def counting(*args: Any) -> Any:
        nonlocal rendered
        rendered += 1
        return render(*args)

    monkeypatch.setattr(service.presenters, "public_contact", counting)
    contact = await env.contact(name="Grace", identifier="g1", identifier_hash=env.hash("g1"))
    url = env.contact_url(contact["source_id"])
    rendered = 0
    first, second = await env.client.get(url), await env.client.get(url)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["content-type"] == second.headers["content-type"]
    assert rendered == 1
    proving = await env.client.get(
        url, params={"identifier": "g1", "identifier_hash": env.hash("g1")}
    )
    assert proving.status_code == 200 and proving.json() == first.json()
    assert rendered == 2
    other = await env.new_inbox(name="Other")
    r = await env.client.get(env.contact_url(contact["source_id"], other))
    assert r.status_code == 404


async def test_a_conversation_is_never_stale_after_a_write(env: Env) -> None:
    source_id, display_id = await env.session(name="Eve")
    url = env.conv_url(source_id, display_id)
    assert (await _get(env, url))["messages"] == []
    assert (await _get(env, url))["messages"] == []  # from the cache
    await env.send(source_id, display_id, content="hello")
    assert [m["content"] for m in (await _get(env, url))["messages"]] == ["hello"]
    r = await env.client.post(url + "/toggle_status")
    assert r.status_code == 200
    assert (await _get(env, url))["status"] == "resolved"
    body = await _get(env, url)
    await env.store.write(_rename, body["contact"]["id"], "Eve B")
    assert (await _get(env, url))["contact"]["name"] == "Eve B"


async def test_a_conversation_cached_is_answered_byte_for_byte(env: Env) -> None:
    source_id, display_id = await env.session(name="Frank")
    await env.send(source_id, display_id, content="one")
    url = env.conv_url(source_id, display_id)
    first = await env.client.get(url)
    second = await env.client.get(url)
    assert first.content == second.content
    assert first.headers["content-type"] == second.headers["content-type"]


async def test_a_conversation_with_an_attachment_is_not_cached(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its links are signed with the time they were made: each answer makes fresh ones."""
    source_id, display_id = await env.session()
    url = env.conv_url(source_id, display_id)
    files = [("attachments[]", ("a.png", PNG, "image/png"))]
    r = await env.client.post(url + "/messages", data={"content": "pic"}, files=files)
    assert r.status_code == 200, r.text
    made = _counting_links(env, monkeypatch)
    for _ in range(3):
        assert (await _get(env, url))["messages"][0]["attachments"]
    assert made() == 3


async def test_a_cached_conversation_is_keyed_by_the_path_as_sent(env: Env) -> None:
    """A hit skips parsing the id: only values that found the conversation are ever kept."""
    source_id, display_id = await env.session()
    url = env.conv_url(source_id, display_id)
    assert (await env.client.get(url)).status_code == 200
    assert (await env.client.get(url)).status_code == 200
    for odd in (f"+{display_id}", f"{display_id}.0", str(display_id + 1)):
        r = await env.client.get(env.conv_url(source_id, odd))
        assert r.status_code == 404, odd
    assert (await env.client.get(env.conv_url("nobody", display_id))).status_code == 404
    other = await env.new_inbox(name="Other")
    r = await env.client.get(env.conv_url(source_id, display_id, other))
    assert r.status_code == 404


async def test_an_unknown_inbox_is_never_answered_from_the_cache(env: Env) -> None:
    source_id, display_id = await env.session()
    url = env.conv_url(source_id, display_id)
    assert (await env.client.get(url)).status_code == 200
    r = await env.client.get(url.replace(env.inbox.identifier, "nope"))
    assert r.status_code == 404


async def test_a_page_of_messages_is_never_stale_after_a_write(env: Env) -> None:
    source_id, display_id = await env.session()
    await env.send(source_id, display_id, content="one")
    assert [m["content"] for m in await env.messages(source_id, display_id)] == ["one"]
    assert [m["content"] for m in await env.messages(source_id, display_id)] == ["one"]
    await env.send(source_id, display_id, content="two")
    assert [m["content"] for m in await env.messages(source_id, display_id)] == ["one", "two"]
    first = (await env.messages(source_id, display_id))[0]["id"]
    assert [m["content"] for m in await env.messages(source_id, display_id, after=first)] == ["two"]
    r = await env.client.get(env.conv_url("nobody", display_id) + "/messages")
    assert r.status_code == 404


async def test_a_page_with_an_attachment_is_not_cached(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_id, display_id = await env.session()
    url = env.conv_url(source_id, display_id)
    files = [("attachments[]", ("a.png", PNG, "image/png"))]
    r = await env.client.post(url + "/messages", data={"content": "pic"}, files=files)
    assert r.status_code == 200, r.text
    made = _counting_links(env, monkeypatch)
    for _ in range(3):
        assert (await env.messages(source_id, display_id))[0]["attachments"]
    assert made() == 3


async def test_the_cache_is_bounded_in_bytes(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(view_cache, "MAX_VIEW_BYTES", 100)
    cache = ViewCache(sqlite_store)
    version, _ = cache.lookup("a")
    cache.keep(version, "a", "A", 60)
    cache.keep(version, "b", "B", 30)
    assert cache.lookup("a")[1] == "A" and cache.lookup("b")[1] == "B"
    cache.keep(version, "c", "C", 30)  # past the bound: starts again empty
    assert [cache.lookup(k)[1] for k in "abc"] == [None, None, "C"]
    cache.keep(version, "d", "D", 101)  # larger than the whole cache: never held
    assert cache.lookup("d")[1] is None and cache.lookup("c")[1] == "C"


async def test_a_store_just_started_answers_its_version(tmp_path: Path) -> None:
    """``start`` returns once the writer's and the checkpointer's connections are open: their
    journal-mode PRAGMAs lock the file a moment, and the loop's read (which never waits for a
    lock) found it busy in about one start of 50 (the cache then stayed off for that turn)."""
    for i in range(100):
        async with SQLiteStore(tmp_path / f"{i}.db") as store:
            assert store.data_version() is not None, f"start {i}"
