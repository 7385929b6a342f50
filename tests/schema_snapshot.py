"""What a migrated database's schema is, engine by engine, in a form two databases can be
compared by: columns (type, null, default, key), constraints, indexes (with their WHERE),
triggers. ``tests/data/schema-*.json`` hold it as the hand-written DDL made it, so the DDL
rendered from ``gateway.store.schema`` is held to the same database (``tests/test_schema.py``).

After a deliberate schema change (a new migration), refresh them with
``python -m tests.schema_snapshot`` (PostgreSQL at ``INBOXGATE_TEST_POSTGRES_URL``); tests
only read them.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

DATA = Path(__file__).resolve().parent / "data"
SQLITE_SNAPSHOT = DATA / "schema-sqlite.json"
POSTGRES_SNAPSHOT = DATA / "schema-postgresql.json"


def _squeeze(sql: str | None) -> str | None:
    return None if sql is None else re.sub(r"\s+", " ", sql).strip()


def sqlite_schema(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        tables: dict[str, Any] = {}
        for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ):
            indexes = []
            for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})"):
                columns = [r[2] for r in conn.execute(f"PRAGMA index_info({index})")]
                (created,) = conn.execute(
                    "SELECT sql FROM sqlite_master WHERE name = ?", (index,)
                ).fetchone()
                # Constraint indexes are named by position (sqlite_autoindex_t_N): by columns.
                indexes.append([
                    index if origin == "c" else origin, bool(unique), columns,
                    _squeeze(created) if partial else None,
                ])  # fmt: skip
            tables[name] = {
                "columns": [list(r[1:]) for r in conn.execute(f"PRAGMA table_info({name})")],
                "foreign_keys": sorted(
                    [r[2], r[3], r[4]] for r in conn.execute(f"PRAGMA foreign_key_list({name})")
                ),
                "indexes": sorted(indexes, key=json.dumps),
                "autoincrement": "AUTOINCREMENT" in sql.upper(),
            }
        triggers = {
            name: _squeeze(sql)
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
            )
        }
        return {"tables": tables, "triggers": triggers}
    finally:
        conn.close()


async def postgres_schema(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        tables: dict[str, Any] = {}
        for r in await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, ordinal_position"
        ):
            table = tables.setdefault(r[0], {"columns": [], "constraints": [], "indexes": []})
            table["columns"].append(list(r[1:]))
        for r in await conn.fetch(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ):
            tables[r[0]]["constraints"].append([r[1], r[2]])
        for r in await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' ORDER BY 1, 2"
        ):
            tables[r[0]]["indexes"].append([r[1], r[2]])
        triggers = {
            r[0]: r[1]
            for r in await conn.fetch(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
                "ORDER BY 1"
            )
        }
        functions = {
            r[0]: _squeeze(r[1])
            for r in await conn.fetch(
                "SELECT proname, prosrc FROM pg_proc "
                "WHERE pronamespace = 'public'::regnamespace ORDER BY 1"
            )
        }
        return {"tables": tables, "triggers": triggers, "functions": functions}
    finally:
        await conn.close()


def _one_line(found: re.Match[str]) -> str:
    return "[" + re.sub(r",\s+", ", ", found[1]) + "]"


def _write(path: Path, schema: dict[str, Any]) -> None:
    text = json.dumps(schema, indent=1, sort_keys=True)
    # One line per column, constraint or index: each innermost list on one line.
    text = re.sub(r"\[\s*([^\[\]{}]*?)\s*\]", _one_line, text)
    path.write_text(text + "\n")


async def _refresh() -> None:
    from gateway.store import SQLiteStore
    from gateway.store.postgres import PostgresStore
    from tests.postgres_helpers import fresh_database

    with tempfile.TemporaryDirectory() as tmp:
        await SQLiteStore(Path(tmp) / "s.db").migrate()
        _write(SQLITE_SNAPSHOT, sqlite_schema(Path(tmp) / "s.db"))
    async with fresh_database() as url:
        await PostgresStore(url).migrate()
        _write(POSTGRES_SNAPSHOT, await postgres_schema(url))


if __name__ == "__main__":
    asyncio.run(_refresh())
    print(f"wrote {SQLITE_SNAPSHOT} and {POSTGRES_SNAPSHOT}")
