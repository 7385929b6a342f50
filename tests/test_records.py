"""Records derive their column list and row reader from their fields: named once, read alike
on both engines (SQLite's 0/1 booleans, JSON kept as text)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import gateway.domain  # noqa: F401 - defines the records that live beside their operations
from client_sdk import protocol as p
from gateway.domain.incoming_reads import IncomingContext
from gateway.domain.messages import MessageResult
from gateway.domain.notify import Known
from gateway.store.records import Conversation, LoggedEvent, Message, Record


def records() -> list[type[Record]]:
    """The gateway's records (a test's own subclass, refused at definition, may linger until
    it is collected: it is not one)."""
    found, todo = [], list(Record.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("gateway."):
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("record", records(), ids=lambda cls: cls.__name__)
def test_columns_are_the_fields_in_order_less_the_loaded_ones(record: type[Record]) -> None:
    loaded = {"Message": ["attachments", "performer"], "Conversation": ["assignee", "team"]}
    fields = [f.name for f in msgspec.structs.fields(record)]
    assert (
        ", ".join(name for name in fields if name not in loaded.get(record.__name__, []))
        == record.COLUMNS
    )


def test_a_row_reads_as_on_both_engines() -> None:
    row = (1, 2, 3, 4, "hi", 0, "text", '{"a": [1]}', 1, "sent", "Contact", 5, None, None, 1.5, 2.5)
    message = Message.from_row(row)
    assert message == Message(
        id=1, account_id=2, inbox_id=3, conversation_id=4, content="hi", message_type=0,
        content_type="text", content_attributes={"a": [1]}, private=True, status="sent",
        sender_type="Contact", sender_id=5, echo_id=None, source_id=None, created_at=1.5,
        updated_at=2.5,
    )  # fmt: skip
    assert message.private is True and message.attachments == [] and message.performer is None
    # Empty JSON text reads as the field's empty value, a fresh one each time.
    row = (1, 1, 1, 1, 1, 1, "u", "open", None, None, None, 0.0, None, "", "{}", 0.0, 0.0,
           None, None, None, None, None, "")  # fmt: skip
    first, second = Conversation.from_row(row), Conversation.from_row(row)
    assert first.custom_attributes == {} and first.labels == []
    assert first.labels is not second.labels


def test_a_field_no_column_can_hold_is_refused_when_the_record_is_defined() -> None:
    with pytest.raises(TypeError, match="no column reader"):

        class Odd(Record, kw_only=True):
            path: Path


@pytest.mark.parametrize("record", records(), ids=lambda cls: cls.__name__)
def test_records_are_left_to_their_reference_counts(record: type[Record]) -> None:
    """No record is tracked by the cycle collector (young collections would visit every row a
    request read): its class says so, whatever its fields hold."""
    assert record.__struct_config__.gc is False


def test_what_a_customer_message_carries_is_left_to_reference_counts() -> None:
    """The hot path's other structs hold records, counts, payload data and bytes, never a way
    back to themselves: untracked as records are."""
    # ... and the payload a conversation's last message leaves with the writer's memory.
    payload = (p.MessageEventData, p.MessageConversationRef, p.ContactSender)
    for struct in (IncomingContext, Known, MessageResult, LoggedEvent, *payload):
        assert struct.__struct_config__.gc is False, struct.__name__
