"""Form bodies and query strings, read strictly.

Starlette reads a form leniently: an invalid UTF-8 byte in a URL-encoded field becomes U+FFFD,
a multipart text part that is not UTF-8 silently becomes Latin-1, and the text parts of a
multipart body are bounded one by one (1 MiB each, 1000 of them) but not together, so a form
could carry 45 MiB of text where a JSON body may carry 1 MiB. Here a field that is not UTF-8
is a 400 naming it, and the text of a form is bounded as a whole, like a JSON body (413).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from urllib.parse import unquote_to_bytes

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartParser
from starlette.requests import Request

from .errors import BadRequest, PayloadTooLarge

MAX_FIELDS = 1000


def _not_utf8(field: str) -> BadRequest:
    return BadRequest(f"Parameter {field} is not valid UTF-8", field)


def _unquote(raw: bytes, field: str | None) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8(field or raw.decode("utf-8", "replace")) from None


def parse_urlencoded(data: bytes, max_fields: int = MAX_FIELDS) -> list[tuple[str, str]]:
    """``a=1&b[c]=2`` (a query string or an ``application/x-www-form-urlencoded`` body) as
    ``(name, value)`` pairs in order; percent-escapes and raw bytes must be UTF-8."""
    pairs: list[tuple[str, str]] = []
    for chunk in data.split(b"&"):
        if not chunk:
            continue
        if len(pairs) >= max_fields:
            raise BadRequest(f"Too many parameters (maximum is {max_fields})")
        raw_name, _, raw_value = chunk.partition(b"=")
        name = _unquote(raw_name, None)
        pairs.append((name, _unquote(raw_value, name)))
    return pairs


class _StrictMultiPartParser(MultiPartParser):
    """Starlette's parser, with UTF-8 names and text parts, and a bound on all text parts."""

    def __init__(
        self, headers: Headers, stream: AsyncGenerator[bytes], *, max_text: int, **limits: int
    ) -> None:
        super().__init__(headers, stream, **limits)
        self.max_text = max_text
        self.text_bytes = 0

    def on_headers_finished(self) -> None:
        _disposition, options = parse_options_header(self._current_part.content_disposition)
        for key in (b"name", b"filename"):
            raw = options.get(key)
            if raw is not None:
                try:
                    raw.decode(self._charset or "utf-8")
                except UnicodeDecodeError:
                    raise _not_utf8(key.decode()) from None
        super().on_headers_finished()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is None:
            self.text_bytes += end - start
            if self.text_bytes > self.max_text:
                raise PayloadTooLarge(
                    f"The form's text fields are larger than {self.max_text} bytes"
                )
        super().on_part_data(data, start, end)

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                bytes(part.data).decode(self._charset or "utf-8")
            except UnicodeDecodeError:
                raise _not_utf8(part.field_name) from None
        super().on_part_end()


async def read_multipart(
    request: Request, *, max_files: int, max_text: int, max_part: int
) -> FormData:
    """The multipart body of ``request``, parsed once; ``request.close()`` closes its files
    (it is cached where ``request.form()`` would cache it)."""
    async with aclosing(request.stream()) as stream:  # as Request.form() reads it
        parser = _StrictMultiPartParser(
            request.headers, stream, max_text=max_text, max_files=max_files,
            max_fields=MAX_FIELDS, max_part_size=max_part,
        )  # fmt: skip
        form = await parser.parse()
    request._form = form  # Request.close() closes the spooled files of this form
    return form
