"""What any input may be, whatever carried it (JSON, a form, multipart, the query string).

Every request parameter bag passes :func:`check_bag` once, in ``gateway.http.read_params``,
so a limit set here holds on every route and for every content type: Rails' bracket notation
in a form builds the same nested objects a JSON body does, and must not get around a limit
that only the JSON decoder knew. Ids and numbers are read by :func:`parse_id` alone: ASCII
digits within PostgreSQL's ``bigint`` (Python's ``int()`` also takes ``1_0``, ``+1``, `` 1``
and full-width or Arabic-Indic digits; a number past 2**63 is a 500 in the database driver).

Failures, all gateway errors with JSON bodies:

* nesting deeper than :data:`MAX_DEPTH` (in a JSON body or in bracket notation): 400;
* a NUL character anywhere (PostgreSQL text cannot hold one), a string, key, object or array
  over its limit, an integer outside 64 bits: 422 naming the top-level parameter.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .domain.validation import MAX_ID as MAX_ID
from .domain.validation import parse_id as parse_id
from .errors import BadRequest, ValidationFailed

MIN_INT = -(2**63)
MAX_DEPTH = 32  # Rack's default param depth limit is 32 as well
MAX_KEYS = 1000  # keys of one object; Starlette's form field limit is 1000 too
MAX_ITEMS = 10_000  # items of one array
MAX_KEY = 255  # characters of one key
MAX_PAGE = 1_000_000_000  # far past any real list; (page - 1) * page size fits any column
# Characters of one string: over every field's own limit (the longest, a message's content,
# is 150 000), so that a field's own check answers first, in its own words.
MAX_STRING = 256 * 1024


def page_number(value: object) -> int:
    """``page``: absent, blank or 0 is the first page (as Kaminari); anything but ASCII digits
    up to :data:`MAX_PAGE` is a 422, not an offset the database cannot hold."""
    if value is None or value == "":
        return 1
    number = parse_id(value)
    if number is None or number > MAX_PAGE:
        raise ValidationFailed(f"Page must be an integer from 1 to {MAX_PAGE}", ["page"])
    return max(number, 1)


def ascii_digits(value: str) -> bool:
    """``str.isdigit`` without superscripts (which ``int()`` refuses) or non-ASCII digits."""
    return value.isascii() and value.isdigit()


def decode_json(data: bytes | str, field: str = "body") -> Any:
    """JSON of any shape, as a request carries it; check it with :func:`check_value` or
    :func:`check_bag`. A malformed document raises ``msgspec.DecodeError``; one nested past
    the interpreter's recursion limit (where msgspec raises RecursionError, a 500 if left
    alone) raises :class:`BadRequest`."""
    try:
        return msgspec.json.decode(data)
    except RecursionError:
        raise _too_deep(field) from None


def _too_deep(field: str) -> BadRequest:
    return BadRequest(f"Parameters are nested too deeply (maximum depth is {MAX_DEPTH})", field)


def _label(field: str) -> str:
    return field.replace("_", " ").capitalize()


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"{_label(field)} {problem}", [field])


def check_text(field: str, value: str, maximum: int = MAX_STRING) -> None:
    if "\x00" in value:
        raise _invalid(field, "must not contain NUL characters")
    if len(value) > maximum:
        raise _invalid(field, f"is too long (maximum is {maximum} characters)")


def check_value(field: str, value: Any) -> None:
    """Walk ``value`` (iteratively: a deep value must not exhaust the stack here either) and
    raise at the first thing over a limit; ``field`` names it in the error."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(field, item)
        elif isinstance(item, bool | float) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_ID:
                raise _invalid(field, "is out of range (a 64-bit integer)")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _too_deep(field)
            if isinstance(item, dict):
                if len(item) > MAX_KEYS:
                    raise _invalid(field, f"has too many keys (maximum is {MAX_KEYS})")
                for key in item:
                    check_text(field, str(key), MAX_KEY)
                children = item.values()
            else:
                if len(item) > MAX_ITEMS:
                    raise _invalid(field, f"has too many items (maximum is {MAX_ITEMS})")
                children = item  # type: ignore[assignment]
            stack.extend((child, depth + 1) for child in children)


def check_bag(values: dict[str, Any]) -> None:
    """Every parameter of a request; an error names the top-level parameter it is in."""
    if len(values) > MAX_KEYS:
        raise ValidationFailed(f"Too many parameters (maximum is {MAX_KEYS})", ["base"])
    for key, value in values.items():
        field = str(key)
        check_text(field, field, MAX_KEY)
        check_value(field, value)
