"""HTTP for the routes: request bodies to Structs, gateway errors to JSON. (What guards every
request before a route sees it, CORS and the limits, is :mod:`gateway.edge`.)

Rails merges query, form, multipart and JSON parameters into one bag and so does
:func:`read_params`; the bag is converted to the route's protocol Struct, and a type mismatch
becomes a 422 that names the attribute.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from client_sdk import protocol as p

from . import inputs
from .errors import (
    ApiError,
    BadRequest,
    GatewayError,
    HmacFailed,
    Locked,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
)
from .forms import parse_urlencoded, read_multipart
from .store import StoreUnavailable

S = TypeVar("S")
JSON_TYPE = "application/json; charset=utf-8"
_BRACKETS = re.compile(r"\[([^\]]*)\]")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(p.encode(value), status_code=status, media_type=JSON_TYPE, headers=headers)


def empty_response() -> Response:
    return Response(b"", status_code=200, media_type=JSON_TYPE)


_BASE_URLS: dict[tuple[Any, ...], str] = {}
MAX_BASE_URLS = 64


def base_url(request: Request) -> str:
    """``str(request.base_url)`` without its final slash (links in answers start with it),
    remembered per scheme, server, Host header and root path: building the URL costs more
    than most reads, and a deployment is reached by a handful of names."""
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    server = scope.get("server")
    key = (scope.get("scheme"), server, host, scope.get("root_path"), scope.get("app_root_path"))
    found = _BASE_URLS.get(key) if server is None or type(server) is tuple else None
    if found is None:
        found = str(request.base_url).rstrip("/")
        if len(_BASE_URLS) < MAX_BASE_URLS and (server is None or type(server) is tuple):
            _BASE_URLS[key] = found  # a client names the host: only the first few are kept
    return found


# -- parameters -----------------------------------------------------------------------------


def _assign(bag: dict[str, Any], key: str, value: Any) -> None:
    """Rails bracket notation: ``a[b]=1`` → ``{"a": {"b": "1"}}``, ``a[]=1`` → list."""
    head, _, _rest = key.partition("[")
    parts = [head, *_BRACKETS.findall(key)] if "[" in key else [key]
    target: Any = bag
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt = None if last else parts[i + 1]
        if last:
            if isinstance(target, list):
                target.append(value)
            elif part == "":
                continue
            else:
                target[part] = value
            return
        container: Any = [] if nxt == "" else {}
        if isinstance(target, list):
            target.append(container)
            target = container
            continue
        existing = target.get(part)
        if not isinstance(existing, type(container)):
            target[part] = container
            existing = container
        target = existing


class Params:
    """What a request carried: the merged parameter bag and any uploaded files."""

    def __init__(self, values: dict[str, Any], files: list[UploadFile]) -> None:
        self.values = values
        self.files = files

    def to(self, struct: type[S]) -> S:
        try:
            converted = msgspec.convert(self.values, struct, strict=False)
        except msgspec.ValidationError as exc:
            raise _validation_error(exc) from None
        # Lenient conversion reads "99999999999999999999" into an ``int`` field: bound again.
        # (Nothing else it does can break a bound the bag was checked against: it turns
        # strings into numbers, never anything into a longer string.)
        has_int = _HAS_INT.get(struct)
        if has_int is None:
            has_int = _HAS_INT[struct] = _has_int(struct)
        if has_int:
            inputs.check_bag(msgspec.to_builtins(converted))
        return converted


_HAS_INT: dict[type, bool] = {}  # per request Struct: the protocol's few dozen


def _has_int(struct: type) -> bool:
    """Whether an ``int`` can sit anywhere in a ``struct`` converted from a bag."""
    seen: set[int] = set()
    stack: list[mi.Type] = [mi.type_info(struct)]
    while stack:
        info = stack.pop()
        if id(info) in seen:
            continue
        seen.add(id(info))
        if isinstance(info, mi.IntType):
            return True
        if isinstance(info, mi.StructType):
            stack.extend(f.type for f in info.fields)
        elif isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            stack.append(info.item_type)
        elif isinstance(info, mi.TupleType):
            stack.extend(info.item_types)
        elif isinstance(info, mi.DictType):
            stack += (info.key_type, info.value_type)
        elif isinstance(info, mi.UnionType):
            stack.extend(info.types)
        elif isinstance(info, mi.Metadata):
            stack.append(info.type)
    return False


def _validation_error(exc: msgspec.ValidationError) -> ValidationFailed:
    text = str(exc)
    match = re.search(r"at `\$\.?([A-Za-z_][\w]*)", text)
    attribute = match.group(1) if match else "base"
    message = text.split(" - at ")[0]
    return ValidationFailed(f"{attribute.replace('_', ' ').capitalize()} {message}", [attribute])


async def read_params(
    request: Request, *, max_json: int, max_files: int, max_form_part: int = 1024 * 1024
) -> Params:
    """Query, form, multipart or JSON parameters in one bag, checked by
    :func:`gateway.inputs.check_bag` whatever carried them; ``max_json`` bounds a JSON body and
    the text of a form alike."""
    scope = request.scope
    query = scope.get("query_string", b"")
    content_type, framed = _content_type(scope["headers"])
    if not query and not framed and scope.get("http_version") in _UNFRAMED_IS_EMPTY:
        # A widget's GET: no query, and no body (nothing frames one, see ``_read_body``):
        # nothing to parse or check.
        return Params({}, [])
    values: dict[str, Any] = {}
    for key, value in parse_urlencoded(query):
        _assign(values, key, value)
    files = await _read_body(
        request, values, content_type, framed, max_json, max_files, max_form_part
    )
    inputs.check_bag(values)
    for upload in files:
        inputs.check_text("attachments", upload.filename or "", inputs.MAX_KEY)
        inputs.check_text("attachments", upload.content_type or "", inputs.MAX_KEY)
    return Params(values, files)


def _content_type(headers: list[tuple[bytes, bytes]]) -> tuple[str, bool]:
    """The media type (lower case, no parameters) of the first Content-Type header, as
    ``request.headers.get`` would find it, without building a Headers object per request;
    and whether the headers announce a body (Content-Length or Transfer-Encoding)."""
    content_type: str | None = None
    framed = False
    for name, value in headers:
        if name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1").split(";")[0].strip().lower()
        elif name == b"content-length" or name == b"transfer-encoding":
            framed = True
    return content_type or "", framed


# HTTP versions whose requests carry a body only with Content-Length or Transfer-Encoding.
_UNFRAMED_IS_EMPTY = ("1.1", "1.0")


async def _body(request: Request) -> bytes:
    """What ``request.body()`` reads, without the async generator it reads through (every
    public request reads its body, a GET's too: Rails merges it into the parameters)."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def _read_body(
    request: Request,
    values: dict[str, Any],
    content_type: str,
    framed: bool,
    max_json: int,
    max_files: int,
    max_form_part: int,
) -> list[UploadFile]:
    """The body's parameters into ``values``; ``content_type`` and ``framed`` as
    :func:`_content_type` found them."""
    scope = request.scope
    files: list[UploadFile] = []
    if content_type == "multipart/form-data":
        try:
            form = await read_multipart(
                request, max_files=max_files + 1, max_text=max_json, max_part=max_form_part
            )
        except MultiPartException as exc:
            if "Too many files" in exc.message:
                raise ValidationFailed(
                    f"Too many attachments (maximum is {max_files})", ["attachments"]
                ) from None
            raise BadRequest(f"Malformed form body: {exc.message}") from None
        for key, item in form.multi_items():
            if isinstance(item, UploadFile):
                files.append(item)
            else:
                _assign(values, key, item)
        return files
    if framed or scope.get("http_version") not in _UNFRAMED_IS_EMPTY:
        body = await _body(request)
    else:
        # HTTP/1.x: a request with neither header has no body (RFC 9112 §6.3): nothing to
        # wait for (a widget's GET saves the receive, its event and a turn of the loop).
        body = b""
    if content_type == "application/x-www-form-urlencoded":
        if len(body) > max_json:
            raise PayloadTooLarge(f"Form body is larger than {max_json} bytes")
        for key, item in parse_urlencoded(body):
            _assign(values, key, item)
        return files
    if not body.strip():
        return files
    is_json = content_type == "application/json" or content_type.endswith("+json")
    if not is_json and content_type:
        return files  # Rails ignores bodies it has no parser for
    if len(body) > max_json:
        raise PayloadTooLarge(f"JSON body is larger than {max_json} bytes")
    try:
        decoded = inputs.decode_json(body)
    except msgspec.DecodeError as exc:
        if not is_json:
            return files  # no Content-Type and not JSON: ignored, as Rails
        raise BadRequest(f"Malformed JSON body: {exc}") from None
    if not isinstance(decoded, dict):
        if not is_json:
            return files
        raise BadRequest("The JSON body must be an object")
    values.update(decoded)
    return files


def int_param(value: str, what: str) -> int:
    """Path ids: Rails' find_by with a non-numeric id finds nothing; neither does one written
    any other way than ASCII digits, nor one past 2**63-1 (see :func:`inputs.parse_id`)."""
    number = inputs.parse_id(value)
    if number is None:
        raise NotFound(what)
    return number


def query_int(params: Params, name: str, what: str) -> int | None:
    """An optional numeric parameter (``before``, ``after``): absent or blank is None,
    anything but ASCII digits within 2**63-1 a 422 naming it."""
    raw = params.values.get(name)
    if raw is None or raw == "":
        return None
    number = inputs.parse_id(raw)
    if number is None:
        raise ValidationFailed(f"{name.capitalize()} must be {what}", [name])
    return number


# -- errors ---------------------------------------------------------------------------------


def error_response(exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailable):
        exc = ServiceUnavailable()
    if isinstance(exc, NotFound):
        return json_response(p.StatusError(status=404, error="Not Found"), 404)
    if isinstance(exc, ValidationFailed):
        invalid = p.ValidationError(message=exc.message, attributes=exc.attributes)
        return json_response(invalid, 422, _retry_after(exc.retry_after))
    if isinstance(exc, Locked):
        return json_response(p.PlainError(error=exc.error), 422)
    if isinstance(exc, HmacFailed):
        body = p.DetailedError(
            status=401, error="Unauthorized", description=exc.description,
            errors=[p.RequestErrorItem(field="identifier_hash", message=exc.description,
                                       code="invalid_hmac")],
        )  # fmt: skip
        return json_response(body, 401)
    if isinstance(exc, RateLimited):
        body = p.DetailedError(status=429, error="Too Many Requests", description=exc.description)
        return json_response(body, 429, {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, BadRequest | PayloadTooLarge):
        status = exc.status
        name = "Bad Request" if status == 400 else "Payload Too Large"
        body = p.DetailedError(
            status=status, error=name, description=exc.description,
            errors=[p.RequestErrorItem(field=exc.field, message=exc.description,
                                       code="malformed" if status == 400 else "too_large")],
        )  # fmt: skip
        return json_response(body, status)
    if isinstance(exc, ServiceUnavailable):
        body = p.DetailedError(status=503, error="Service Unavailable", description=exc.description)
        return json_response(body, 503, {"Retry-After": "1"})
    if isinstance(exc, ApiError):
        return json_response(exc.body, exc.status, _retry_after(exc.retry_after))
    if isinstance(exc, GatewayError):
        return json_response(p.StatusError(status=exc.status, error=str(exc)), exc.status)
    return json_response(p.StatusError(status=500, error="Internal Server Error"), 500)


def http_error_response(exc: HTTPException) -> Response:
    if exc.status_code in (404, 405):
        # Rails answers an undeclared action on a known resource with 404, not 405.
        return json_response(p.StatusError(status=404, error="Not Found"), 404)
    return json_response(
        p.StatusError(status=exc.status_code, error=str(exc.detail)), exc.status_code
    )


def _retry_after(seconds: int | None) -> dict[str, str] | None:
    return None if seconds is None else {"Retry-After": str(seconds)}
