"""Stored rows as typed records. Internal to the gateway: the wire shapes live in
``client_sdk.protocol`` and ``gateway.views`` map one to the other.

A record's fields are its table's columns, in order: :class:`Record` derives the column list
(``COLUMNS``, what a SELECT or RETURNING names) and ``from_row`` (a row in that order to a
record) from them when the class is defined, so a column is named once, by its field. Fields
that are not columns (loaded on demand) are typed ``Loaded[...]``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from types import UnionType
from typing import Annotated, Any, ClassVar, Self, TypeVar

from msgspec import Struct

from .sql import Row, load_json

T = TypeVar("T")


class _NotAColumn:
    """The mark of a record field that no row carries (see ``Loaded``)."""


NOT_A_COLUMN = _NotAColumn()
# A record field loaded on demand, not a column of the record's table.
Loaded = Annotated[T, NOT_A_COLUMN]

# How a column's value becomes its field's: SQLite gives booleans as 0/1 and both engines give
# JSON as text; anything else is taken as the driver gives it.
_PLAIN = (int, float, str, type(None))


def _reader(name: str, hint: Any) -> str:
    """The expression that reads column ``name`` (in the generated code: ``r[i]``)."""
    origin = typing.get_origin(hint) or hint
    if hint is bool:
        return f"bool({name})"
    if hint is bytes:
        return f"bytes({name})"
    if origin is dict or origin is list:
        return f"load_json({name}, {'{}' if origin is dict else '[]'})"
    if hint in _PLAIN or (origin is UnionType and set(typing.get_args(hint)) <= set(_PLAIN)):
        return name
    raise TypeError(f"no column reader for {hint!r}")


def _row_reader(cls: type[T], columns: list[tuple[str, Any]]) -> Callable[[Row], T]:
    """``from_row`` for ``cls``: generated once, as the keyword call one would write by hand
    (``cls(id=r[0], private=bool(r[8]), ...)``): measured as fast as that hand-written call,
    and twice as fast as a loop over the fields would be (this is every read's hot path)."""
    args = ", ".join(f"{name}={_reader(f'r[{i}]', hint)}" for i, (name, hint) in enumerate(columns))
    scope: dict[str, Any] = {"cls": cls, "load_json": load_json}
    exec(f"def from_row(r):\n    return cls({args})", scope)
    reader: Callable[[Row], T] = scope["from_row"]
    return reader


# Records are out of the cycle collector's reach (``gc=False``): a row's values and what is
# loaded beside it never refer back to it, so its reference count frees it, and every request
# makes dozens that no young collection needs to visit (1.1% fewer instructions per customer
# message, ``benchmarks.instructions``). A record must never be put in a reference cycle.
class Record(Struct, kw_only=True, gc=False):
    """A row of one table (see the module docstring)."""

    COLUMNS: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls, include_extras=True)
        columns = [
            (name, hint)
            for name, hint in hints.items()
            if typing.get_origin(hint) is not ClassVar
            and NOT_A_COLUMN not in getattr(hint, "__metadata__", ())
        ]
        cls.COLUMNS = ", ".join(name for name, _ in columns)
        # Replaces the classmethod below: the class's own reader, called with the row alone.
        setattr(cls, "from_row", staticmethod(_row_reader(cls, columns)))  # noqa: B010

    @classmethod
    def from_row(cls, row: Row) -> Self:
        """The record that ``row`` (its ``COLUMNS``, in order) holds."""
        raise NotImplementedError  # every subclass gets its own, generated


DEFAULT_WORKING_HOURS: list[dict[str, Any]] = [
    {
        "day_of_week": day,
        "closed_all_day": day in (0, 6),
        "open_hour": None if day in (0, 6) else 9,
        "open_minutes": None if day in (0, 6) else 0,
        "close_hour": None if day in (0, 6) else 17,
        "close_minutes": None if day in (0, 6) else 0,
        "open_all_day": False,
    }
    for day in range(7)
]


class Account(Record, kw_only=True):
    id: int
    name: str
    created_at: float


class Inbox(Record, kw_only=True):
    id: int
    account_id: int
    name: str
    identifier: str
    hmac_token: str
    hmac_mandatory: bool
    webhook_url: str | None
    csat_survey_enabled: bool
    csat_display_type: str
    csat_message: str | None
    timezone: str
    working_hours_enabled: bool
    working_hours: list[dict[str, Any]]
    out_of_office_message: str | None
    greeting_enabled: bool
    greeting_message: str | None
    lock_to_single_conversation: bool
    allowed_origins: list[str]
    reply_time_window_hours: int | None
    created_at: float


class User(Record, kw_only=True):
    id: int
    name: str
    email: str
    pubsub_token: str
    availability: str
    created_at: float


class Contact(Record, kw_only=True):
    id: int
    account_id: int
    name: str
    email: str | None
    phone_number: str | None
    identifier: str | None
    additional_attributes: dict[str, Any]
    custom_attributes: dict[str, Any]
    blocked: bool
    contact_type: str
    last_activity_at: float | None
    created_at: float
    updated_at: float


class ContactInbox(Record, kw_only=True):
    """One contact session (device): ``source_id`` is its credential on the public API."""

    id: int
    contact_id: int
    inbox_id: int
    source_id: str
    pubsub_token: str
    hmac_verified: bool
    created_at: float
    updated_at: float


class Team(Record, kw_only=True):
    id: int
    account_id: int
    name: str
    description: str | None
    allow_auto_assign: bool
    created_at: float
    updated_at: float


class Conversation(Record, kw_only=True):
    id: int
    account_id: int
    inbox_id: int
    contact_id: int
    contact_inbox_id: int
    display_id: int
    uuid: str
    status: str
    assignee_id: int | None
    contact_last_seen_at: float | None
    agent_last_seen_at: float | None
    last_activity_at: float
    waiting_since: float | None
    custom_attributes: dict[str, Any]
    additional_attributes: dict[str, Any]
    created_at: float
    updated_at: float
    # The agent API's additions (migration 3).
    priority: str | None = None
    snoozed_until: float | None = None
    team_id: int | None = None
    assignee_last_seen_at: float | None = None
    first_reply_created_at: float | None = None
    labels: list[str] = []
    # Who the conversation is assigned to, for the push payload's meta.
    assignee: Loaded[User | None] = None
    team: Loaded[Team | None] = None


class Attachment(Record, kw_only=True):
    id: int
    message_id: int
    account_id: int
    file_type: str
    extension: str | None
    file_name: str
    content_type: str
    file_size: int
    storage_key: str
    width: int | None
    height: int | None


class AgentBot(Record, kw_only=True):
    """An agent bot (reference agent §2.4); ``account_id`` None is a system bot."""

    id: int
    account_id: int | None
    name: str
    description: str | None
    outgoing_url: str | None
    bot_type: str
    bot_config: dict[str, Any]
    secret: str
    avatar_url: str | None
    created_at: float
    updated_at: float


class Message(Record, kw_only=True):
    id: int
    account_id: int
    inbox_id: int
    conversation_id: int
    content: str | None
    message_type: int
    content_type: str
    content_attributes: dict[str, Any]
    private: bool
    status: str
    sender_type: str | None
    sender_id: int | None
    echo_id: str | None
    source_id: str | None
    created_at: float
    updated_at: float
    attachments: Loaded[list[Attachment]] = []
    # The agent or bot whose action this event reports (the push payload's performer).
    performer: Loaded[User | AgentBot | None] = None


class CsatResponse(Record, kw_only=True):
    id: int
    account_id: int
    conversation_id: int
    message_id: int
    rating: int
    feedback_message: str | None
    contact_id: int | None
    assigned_agent_id: int | None
    created_at: float
    updated_at: float


class LoggedEvent(Struct, kw_only=True, gc=False):  # untracked, as a Record
    """One entry of the durable event log: an encoded ``{"event", "data"}`` at a stream offset."""

    stream: str
    epoch: str
    offset: int
    name: str
    payload: bytes
    created_at: float
    # Not stored: the committing transaction enqueued webhook deliveries with this event, so
    # the delivery worker has something to send (it is woken for nothing else).
    deliveries: bool = False


# Who acts through the agent API: a user, or an agent bot with its own token.
Performer = User | AgentBot


def viewer_id(performer: Performer) -> int:
    """The user id that views computed "for the requesting user" (``team.is_member``) use:
    none for a bot (user ids start at 1)."""
    return performer.id if isinstance(performer, User) else 0
