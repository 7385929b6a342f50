"""Stored rows as typed records. Internal to the gateway: the wire shapes live in
``client_sdk.protocol`` and ``gateway.presenters`` maps one to the other.

Each record names its columns once (``COLUMNS``) and builds itself from a row in that order.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from .sql import Row, load_json

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


class Account(Struct, kw_only=True):
    id: int
    name: str
    created_at: float

    COLUMNS = "id, name, created_at"

    @classmethod
    def from_row(cls, r: Row) -> Account:
        return cls(id=r[0], name=r[1], created_at=r[2])


class Inbox(Struct, kw_only=True):
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

    COLUMNS = (
        "id, account_id, name, identifier, hmac_token, hmac_mandatory, webhook_url, "
        "csat_survey_enabled, csat_display_type, csat_message, timezone, working_hours_enabled, "
        "working_hours, out_of_office_message, greeting_enabled, greeting_message, "
        "lock_to_single_conversation, allowed_origins, reply_time_window_hours, created_at"
    )

    @classmethod
    def from_row(cls, r: Row) -> Inbox:
        return cls(
            id=r[0], account_id=r[1], name=r[2], identifier=r[3], hmac_token=r[4],
            hmac_mandatory=bool(r[5]), webhook_url=r[6], csat_survey_enabled=bool(r[7]),
            csat_display_type=r[8], csat_message=r[9], timezone=r[10],
            working_hours_enabled=bool(r[11]), working_hours=load_json(r[12], []),
            out_of_office_message=r[13], greeting_enabled=bool(r[14]), greeting_message=r[15],
            lock_to_single_conversation=bool(r[16]), allowed_origins=load_json(r[17], []),
            reply_time_window_hours=r[18], created_at=r[19],
        )  # fmt: skip


class User(Struct, kw_only=True):
    id: int
    name: str
    email: str
    pubsub_token: str
    availability: str
    created_at: float

    COLUMNS = "id, name, email, pubsub_token, availability, created_at"

    @classmethod
    def from_row(cls, r: Row) -> User:
        return cls(
            id=r[0], name=r[1], email=r[2], pubsub_token=r[3], availability=r[4], created_at=r[5]
        )


class Contact(Struct, kw_only=True):
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

    COLUMNS = (
        "id, account_id, name, email, phone_number, identifier, additional_attributes, "
        "custom_attributes, blocked, contact_type, last_activity_at, created_at, updated_at"
    )

    @classmethod
    def from_row(cls, r: Row) -> Contact:
        return cls(
            id=r[0], account_id=r[1], name=r[2], email=r[3], phone_number=r[4], identifier=r[5],
            additional_attributes=load_json(r[6], {}), custom_attributes=load_json(r[7], {}),
            blocked=bool(r[8]), contact_type=r[9], last_activity_at=r[10], created_at=r[11],
            updated_at=r[12],
        )  # fmt: skip


class ContactInbox(Struct, kw_only=True):
    """One contact session (device): ``source_id`` is its credential on the public API."""

    id: int
    contact_id: int
    inbox_id: int
    source_id: str
    pubsub_token: str
    hmac_verified: bool
    created_at: float
    updated_at: float

    COLUMNS = (
        "id, contact_id, inbox_id, source_id, pubsub_token, hmac_verified, created_at, updated_at"
    )

    @classmethod
    def from_row(cls, r: Row) -> ContactInbox:
        return cls(
            id=r[0], contact_id=r[1], inbox_id=r[2], source_id=r[3], pubsub_token=r[4],
            hmac_verified=bool(r[5]), created_at=r[6], updated_at=r[7],
        )  # fmt: skip


class Team(Struct, kw_only=True):
    id: int
    account_id: int
    name: str
    description: str | None
    allow_auto_assign: bool
    created_at: float
    updated_at: float

    COLUMNS = "id, account_id, name, description, allow_auto_assign, created_at, updated_at"

    @classmethod
    def from_row(cls, r: Row) -> Team:
        return cls(
            id=r[0], account_id=r[1], name=r[2], description=r[3],
            allow_auto_assign=bool(r[4]), created_at=r[5], updated_at=r[6],
        )  # fmt: skip


class Conversation(Struct, kw_only=True):
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
    # Loaded on demand (not columns), like Message.attachments: who the conversation is
    # assigned to, for the push payload's meta.
    assignee: User | None = None
    team: Team | None = None

    COLUMNS = (
        "id, account_id, inbox_id, contact_id, contact_inbox_id, display_id, uuid, status, "
        "assignee_id, contact_last_seen_at, agent_last_seen_at, last_activity_at, waiting_since, "
        "custom_attributes, additional_attributes, created_at, updated_at, priority, "
        "snoozed_until, team_id, assignee_last_seen_at, first_reply_created_at, labels"
    )

    @classmethod
    def from_row(cls, r: Row) -> Conversation:
        return cls(
            id=r[0], account_id=r[1], inbox_id=r[2], contact_id=r[3], contact_inbox_id=r[4],
            display_id=r[5], uuid=r[6], status=r[7], assignee_id=r[8],
            contact_last_seen_at=r[9], agent_last_seen_at=r[10], last_activity_at=r[11],
            waiting_since=r[12], custom_attributes=load_json(r[13], {}),
            additional_attributes=load_json(r[14], {}), created_at=r[15], updated_at=r[16],
            priority=r[17], snoozed_until=r[18], team_id=r[19], assignee_last_seen_at=r[20],
            first_reply_created_at=r[21], labels=load_json(r[22], []),
        )  # fmt: skip


class Attachment(Struct, kw_only=True):
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

    COLUMNS = (
        "id, message_id, account_id, file_type, extension, file_name, content_type, file_size, "
        "storage_key, width, height"
    )

    @classmethod
    def from_row(cls, r: Row) -> Attachment:
        return cls(
            id=r[0], message_id=r[1], account_id=r[2], file_type=r[3], extension=r[4],
            file_name=r[5], content_type=r[6], file_size=r[7], storage_key=r[8], width=r[9],
            height=r[10],
        )  # fmt: skip


class Message(Struct, kw_only=True):
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
    attachments: list[Attachment] = []
    # Not a column: the agent or bot whose action this event reports (the push payload's
    # performer).
    performer: User | AgentBot | None = None

    COLUMNS = (
        "id, account_id, inbox_id, conversation_id, content, message_type, content_type, "
        "content_attributes, private, status, sender_type, sender_id, echo_id, source_id, "
        "created_at, updated_at"
    )

    @classmethod
    def from_row(cls, r: Row) -> Message:
        return cls(
            id=r[0], account_id=r[1], inbox_id=r[2], conversation_id=r[3], content=r[4],
            message_type=r[5], content_type=r[6], content_attributes=load_json(r[7], {}),
            private=bool(r[8]), status=r[9], sender_type=r[10], sender_id=r[11], echo_id=r[12],
            source_id=r[13], created_at=r[14], updated_at=r[15],
        )  # fmt: skip


class CsatResponse(Struct, kw_only=True):
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

    COLUMNS = (
        "id, account_id, conversation_id, message_id, rating, feedback_message, contact_id, "
        "assigned_agent_id, created_at, updated_at"
    )

    @classmethod
    def from_row(cls, r: Row) -> CsatResponse:
        return cls(
            id=r[0], account_id=r[1], conversation_id=r[2], message_id=r[3], rating=r[4],
            feedback_message=r[5], contact_id=r[6], assigned_agent_id=r[7], created_at=r[8],
            updated_at=r[9],
        )  # fmt: skip


class LoggedEvent(Struct, kw_only=True):
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


class AgentBot(Struct, kw_only=True):
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

    COLUMNS = (
        "id, account_id, name, description, outgoing_url, bot_type, bot_config, secret, "
        "avatar_url, created_at, updated_at"
    )

    @classmethod
    def from_row(cls, r: Row) -> AgentBot:
        return cls(
            id=r[0], account_id=r[1], name=r[2], description=r[3], outgoing_url=r[4],
            bot_type=r[5], bot_config=load_json(r[6], {}), secret=r[7], avatar_url=r[8],
            created_at=r[9], updated_at=r[10],
        )  # fmt: skip


# Who acts through the agent API: a user, or an agent bot with its own token.
Performer = User | AgentBot


def viewer_id(performer: Performer) -> int:
    """The user id that views computed "for the requesting user" (``team.is_member``) use:
    none for a bot (user ids start at 1)."""
    return performer.id if isinstance(performer, User) else 0
