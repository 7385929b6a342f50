"""The route table the OpenAPI document is generated from: every method and path the gateway
serves over HTTP, each naming its request and response Structs.

``tests/test_openapi.py`` enumerates the app's routes and fails for a route that has no entry
here and is not in :data:`UNDOCUMENTED`, and for an entry that no route serves, so the
document cannot drift from the app silently. Paths are Starlette's (``{account_id:int}``).
"""

from __future__ import annotations

from .model import Operation
from .table_admin import (
    AGENT_OPERATIONS,
    BOT_OPERATIONS,
    CONTACT_OPERATIONS,
    INBOX_OPERATIONS,
    WEBHOOK_OPERATIONS,
)
from .table_agent import CONVERSATION_OPERATIONS
from .table_platform import OTHER_OPERATIONS, PLATFORM_OPERATIONS
from .table_public import PUBLIC_OPERATIONS

OPERATIONS: tuple[Operation, ...] = (
    *PUBLIC_OPERATIONS,
    *CONVERSATION_OPERATIONS,
    *CONTACT_OPERATIONS,
    *INBOX_OPERATIONS,
    *AGENT_OPERATIONS,
    *WEBHOOK_OPERATIONS,
    *BOT_OPERATIONS,
    *PLATFORM_OPERATIONS,
    *OTHER_OPERATIONS,
)

# Served, deliberately not described: the websocket (Action Cable, see
# reference/chatwoot-public-api.md §6), files for browsers, and this documentation itself.
UNDOCUMENTED_PREFIXES = ("/static",)
UNDOCUMENTED = frozenset(
    {"/cable", "/console", "/", "/demo", "/openapi.json", "/docs", "/docs/docs.css"}
)

# The tag order of the document and the /docs page.
TAGS: tuple[str, ...] = tuple(dict.fromkeys(op.tag for op in OPERATIONS))
