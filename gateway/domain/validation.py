"""Field rules of Chatwoot's models (reference §1, §3), checked before anything is written."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .errors import InvalidAttribute

MAX_CONTENT = 150_000
MAX_CUSTOM_STRING = 1500
MAX_CUSTOM_INTEGER = 9_999_999_999
MAX_NAME = 255
MAX_ECHO_ID = 255
MAX_SOURCE_ID = 255
MAX_CSAT_FEEDBACK = 10_000
MAX_EMAIL = 254  # RFC 5321's longest forward path, less its brackets
# The most a contact or conversation keeps in one attribute map (custom or additional), as
# compact JSON. Every write is held to it: a request's map, and what a merge into the stored
# map makes of it, so that repeated updates with new keys cannot grow a profile without end.
MAX_ATTRIBUTES_BYTES = 16 * 1024

MAX_ID = 2**63 - 1  # PostgreSQL bigint, SQLite INTEGER
_ID = re.compile(r"[0-9]{1,19}")  # a str pattern's [0-9] is ASCII only, unlike \d or isdigit
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9]\d{1,14}$")


def content(value: str | None) -> None:
    if value is not None and len(value) > MAX_CONTENT:
        raise InvalidAttribute(
            f"Content is too long (maximum is {MAX_CONTENT} characters)", ["content"]
        )


def attributes_size(value: Any, attribute: str = "custom_attributes") -> None:
    """An attribute map (or a message's ``submitted_values``) as it is to be stored: at most
    :data:`MAX_ATTRIBUTES_BYTES` of JSON."""
    if value and len(msgspec.json.encode(value)) > MAX_ATTRIBUTES_BYTES:
        label = attribute.replace("_", " ").capitalize()
        raise InvalidAttribute(
            f"{label} are too large (maximum is {MAX_ATTRIBUTES_BYTES} bytes of JSON)", [attribute]
        )


def custom_attributes(value: dict[str, Any] | None) -> None:
    attributes_size(value)
    for key, item in (value or {}).items():
        if isinstance(item, str) and len(item) > MAX_CUSTOM_STRING:
            raise InvalidAttribute(
                f"Custom attributes {key} length should be < {MAX_CUSTOM_STRING}",
                ["custom_attributes"],
            )
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_CUSTOM_INTEGER:
            raise InvalidAttribute(
                f"Custom attributes {key} value should be < {MAX_CUSTOM_INTEGER}",
                ["custom_attributes"],
            )


def email(value: str | None) -> None:
    if value and len(value.strip()) > MAX_EMAIL:
        raise InvalidAttribute(f"Email is too long (maximum is {MAX_EMAIL} characters)", ["email"])
    if value and not _EMAIL.match(value.strip()):
        raise InvalidAttribute("Email Invalid email", ["email"])


def phone_number(value: str | None) -> None:
    if value and not _PHONE.match(value):
        raise InvalidAttribute("Phone number should be in e164 format", ["phone_number"])


def length(attribute: str, value: str | None, maximum: int) -> None:
    if value is not None and len(value) > maximum:
        label = attribute.replace("_", " ").capitalize()
        raise InvalidAttribute(
            f"{label} is too long (maximum is {maximum} characters)", [attribute]
        )


def csat_rating(value: object) -> int:
    """A rating must be an integer 1-5 ("4" is accepted, as Chatwoot's integer cast)."""
    rating: int | None = None
    if isinstance(value, bool):
        rating = None
    elif isinstance(value, int):
        rating = value
    elif isinstance(value, str):
        rating = parse_id(value.strip())  # ASCII digits: int("²") raises
    if rating is None or not 1 <= rating <= 5:
        raise InvalidAttribute("Rating must be an integer from 1 to 5", ["rating"])
    return rating


def parse_id(value: object) -> int | None:
    """A record id or a count: a JSON integer, or ASCII digits only (no sign, space,
    underscore or non-ASCII digit), from 0 to 2**63-1. None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, str) and _ID.fullmatch(value):
        number = int(value)
        return number if number <= MAX_ID else None
    return None
