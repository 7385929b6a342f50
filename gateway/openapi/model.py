"""What one entry of the route table says: an :class:`Operation` per method and path, with its
request and response Structs, its query parameters and who may call it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Auth(Enum):
    """Who may call an operation; each maps to a security scheme and its error bodies."""

    NONE = "none"  # /health, signed attachment links
    PUBLIC = "public"  # the customer API: the inbox identifier and source_id are the keys
    AGENT = "agent"  # api_access_token of a user (or, where ``bots``, of an agent bot)
    PLATFORM = "platform"  # api_access_token of a platform app
    HIGHLEVEL = "highlevel"  # Authorization: Bearer <user access token> + Version header


@dataclass(frozen=True)
class Param:
    """A query or header parameter. ``kind`` is the JSON type of its value."""

    name: str
    kind: type = str
    description: str = ""
    enum: tuple[str, ...] = ()
    required: bool = False
    location: str = "query"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    auth: Auth
    # The 200 body: a type msgspec describes (a Struct, ``list[Struct]``, a union), an
    # inline JSON Schema (a dict), or None for Chatwoot's empty ``head :ok`` body.
    response: Any = None
    body: type | None = None
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    multipart: bool = False  # attachments: the body may also be multipart/form-data
    binary: bool = False  # the 200 body is a file
    extra_errors: tuple[int, ...] = ()
    bots: bool = False  # agent bot tokens are accepted too
    description: str = ""


def ops(methods: str, path: str, operation_id: str, summary: str, tag: str, auth: Auth,
         **fields: Any) -> list[Operation]:  # fmt: skip
    """``methods`` ``"PATCH|PUT"``: one operation each (Rails routes both to ``update``)."""
    found = []
    for i, method in enumerate(methods.split("|")):
        suffix = "" if i == 0 else f"_{method.lower()}"
        found.append(Operation(method, path, operation_id + suffix, summary, tag, auth, **fields))
    return found


UPDATE = "PATCH|PUT"
