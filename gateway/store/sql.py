"""Sans-I/O store operations.

An operation is a generator that yields :class:`Query` objects and receives each query's rows
back; its return value is the operation's result. It never touches a connection, so one
operation runs unchanged on every Store implementation: the SQLite driver feeds it from a
writer thread, the PostgreSQL driver from asyncpg. Operations are written in the SQL both
engines accept (``?`` placeholders, which a driver may rewrite; ``RETURNING``; ``ON CONFLICT``).

Rows are tuples. Booleans are passed as Python ``bool`` and read back through ``bool()`` so
SQLite's 0/1 and PostgreSQL's boolean look the same to an operation; JSON columns are text.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple, ParamSpec, TypeVar

import msgspec

Row = tuple[Any, ...]
Rows = list[Row]
T = TypeVar("T")
P = ParamSpec("P")


class Query(NamedTuple):
    sql: str
    params: Sequence[Any] = ()


Op = Generator[Query, Rows, T]
OpFactory = Callable[P, Op[T]]


def rows(sql: str, *params: Any) -> Op[Rows]:
    result = yield Query(sql, params)
    return result


def one(sql: str, *params: Any) -> Op[Row | None]:
    result = yield Query(sql, params)
    return result[0] if result else None


def scalar(sql: str, *params: Any) -> Op[Any]:
    result = yield Query(sql, params)
    return result[0][0] if result else None


def execute(sql: str, *params: Any) -> Op[None]:
    yield Query(sql, params)


_json_encoder = msgspec.json.Encoder()


def dump_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def load_json(text: str | bytes | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return msgspec.json.decode(text)
