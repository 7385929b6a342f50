"""The HTTP edge: request bodies to Structs, gateway errors to JSON, and the middlewares that
guard every request (body size, rate limit, CORS).

Rails merges query, form, multipart and JSON parameters into one bag and so does
:func:`read_params`; the bag is converted to the route's protocol Struct, and a type mismatch
becomes a 422 that names the attribute.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from .ratelimit import RateLimiter
from .store import StoreUnavailable

S = TypeVar("S")
JSON_TYPE = "application/json; charset=utf-8"
_BRACKETS = re.compile(r"\[([^\]]*)\]")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(p.encode(value), status_code=status, media_type=JSON_TYPE, headers=headers)


def empty_response() -> Response:
    return Response(b"", status_code=200, media_type=JSON_TYPE)


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
        inputs.check_bag(msgspec.to_builtins(converted))
        return converted


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
    values: dict[str, Any] = {}
    for key, value in parse_urlencoded(request.scope.get("query_string", b"")):
        _assign(values, key, value)
    files = await _read_body(request, values, max_json, max_files, max_form_part)
    inputs.check_bag(values)
    for upload in files:
        inputs.check_text("attachments", upload.filename or "", inputs.MAX_KEY)
        inputs.check_text("attachments", upload.content_type or "", inputs.MAX_KEY)
    return Params(values, files)


async def _read_body(
    request: Request, values: dict[str, Any], max_json: int, max_files: int, max_form_part: int
) -> list[UploadFile]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
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
    body = await request.body()
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


def _retry_after(seconds: int | None) -> dict[str, str] | None:
    return None if seconds is None else {"Retry-After": str(seconds)}


# -- middlewares (pure ASGI: no per-request task overhead) -----------------------------------


async def _send_response(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    await response(scope, receive, send)


class NulPathMiddleware:
    """A path with a NUL character names nothing: 404 before any lookup (the CORS check's
    inbox lookup included), as PostgreSQL refuses NUL in text and would answer 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "\x00" in scope.get("path", ""):
            if scope["type"] == "http":
                response = json_response(p.StatusError(status=404, error="Not Found"), 404)
                await _send_response(response, scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self.max_bytes:
                    exc = PayloadTooLarge(f"Request body is larger than {self.max_bytes} bytes")
                    await _send_response(error_response(exc), scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(f"Request body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        limit: int,
        window: int,
        safelist: tuple[str, ...],
        clock: Callable[[], float],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.limit = limit
        self.window = window
        self.safelist = set(safelist)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        if ip not in self.safelist:
            allowed, retry = await self.limiter.acquire(
                "ip:" + ip, self.limit, self.window, self.clock()
            )
            if not allowed:
                exc = RateLimited(retry, f"Rate limit of {self.limit} requests per "
                                         f"{self.window} s exceeded for {ip}")  # fmt: skip
                await _send_response(error_response(exc), scope, receive, send)
                return
        await self.app(scope, receive, send)


InboxOrigins = Callable[[str], Awaitable[list[str] | None]]
_INBOX_PATH = re.compile(r"^/public/api/v1/inboxes/([^/]+)")


class PublicCorsMiddleware:
    """CORS for ``/public/*``: open to every origin by default (as Chatwoot), narrowed by the
    global setting and by an inbox's own allow-list. A browser request from an origin that is
    not allowed is refused with 403 before it can change anything."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...], inbox_origins: InboxOrigins) -> None:
        self.app = app
        self.origins = origins
        self.inbox_origins = inbox_origins

    async def _allowed(self, path: str, origin: str) -> bool:
        if "*" not in self.origins and origin not in self.origins:
            return False
        match = _INBOX_PATH.match(path)
        if match:
            allowed = await self.inbox_origins(match.group(1))
            if allowed and "*" not in allowed and origin not in allowed:
                return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/public/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if not await self._allowed(path, origin):
            body = p.DetailedError(
                status=403, error="Forbidden",
                description=f"Origin {origin} is not allowed for this inbox",
            )  # fmt: skip
            await _send_response(json_response(body, 403), scope, receive, send)
            return
        cors = {"Access-Control-Allow-Origin": "*" if "*" in self.origins else origin,
                "Vary": "Origin"}  # fmt: skip
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            cors["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            cors["Access-Control-Allow-Headers"] = headers.get(
                "access-control-request-headers", "*"
            )
            cors["Access-Control-Max-Age"] = "7200"
            await _send_response(Response(b"", 200, headers=cors), scope, receive, send)
            return
        encoded = [(k.lower().encode(), v.encode()) for k, v in cors.items()]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *encoded]
            await send(message)

        await self.app(scope, receive, send_with_cors)
