"""The OpenAPI 3.1 document, generated from the route table (:mod:`.operations`) and the
protocol's Structs (``msgspec.json.schema_components`` gives ``components/schemas``).

Error responses are shared ``components/responses``, one per body the gateway really sends
(``gateway/http.py`` ``error_response``, ``gateway/errors.py``), chosen by who may call the
operation: the public API's Rails bodies, the agent and platform APIs' ``{"error"}`` bodies,
GoHighLevel's envelope.
"""

from __future__ import annotations

import re
import types
from importlib import metadata
from typing import Any, Union, get_args, get_origin

import msgspec

from client_sdk import protocol as p

from .model import Auth, Operation, Param
from .operations import OPERATIONS, TAGS

REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"{([a-z_]+)(?::[a-z]+)?}")
# ``int_param``: a path id that is not a number from 0 to 2**62 finds nothing (404).
INTEGER_ID = {"type": "integer", "minimum": 0, "maximum": 2**62}
PATH_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "inbox": ({"type": "string"}, "The inbox identifier (inbox_identifier on the agent API)."),
    "source_id": ({"type": "string"}, "The contact session's source_id (its credential)."),
    "conversation_id": (INTEGER_ID, "The conversation's display id in its account."),
    "message_id": (INTEGER_ID, "A message id."),
    "uuid": ({"type": "string"}, "The conversation uuid of the CSAT survey link."),
    "token": ({"type": "string"}, "The signed token of the attachment link."),
    "name": ({"type": "string"}, "The file name."),
    "account_id": (INTEGER_ID, "An account id."),
    "contact_id": (INTEGER_ID, "A contact id."),
    "inbox_id": (INTEGER_ID, "An inbox id."),
    "user_id": (INTEGER_ID, "A user id."),
    "bot_id": (INTEGER_ID, "An agent bot id."),
    "webhook_id": (INTEGER_ID, "A webhook id."),
    "delivery_id": ({"type": "string"}, "A delivery id (the X-Chatwoot-Delivery header)."),
}
TOKEN_HEADER = "api_access_token"
SECURITY_SCHEMES = {
    "agentToken": {
        "type": "apiKey", "in": "header", "name": TOKEN_HEADER,
        "description": "A user's access token (inboxgate user create, the Platform API, "
        "or an administrator's agent create); an agent bot's token where the operation "
        "says so.",
    },
    "platformToken": {
        "type": "apiKey", "in": "header", "name": TOKEN_HEADER,
        "description": "A platform app's access token (inboxgate platform-app create).",
    },
    "highLevelBearer": {
        "type": "http", "scheme": "bearer",
        "description": "A user's access token as a Bearer token, with the Version header.",
    },
}  # fmt: skip
SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    Auth.AGENT: [{"agentToken": []}],
    Auth.PLATFORM: [{"platformToken": []}],
    Auth.HIGHLEVEL: [{"highLevelBearer": []}],
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
# name: (description, body types, headers)
ERROR_RESPONSES: dict[str, tuple[str, tuple[Any, ...], dict[str, Any] | None]] = {
    "BadRequest": ("Malformed body (JSON, multipart).", (p.DetailedError,), None),
    "HmacFailed": ("identifier_hash wrong, or missing where mandatory.", (p.DetailedError,), None),
    "OriginForbidden": ("The Origin is not allowed for this inbox.", (p.DetailedError,), None),
    "NotFound": ("No such inbox, contact session, conversation or message.",
                 (p.StatusError,), None),
    "PayloadTooLarge": ("Body or file over the configured limit.", (p.DetailedError,), None),
    "Unprocessable": ("A parameter is invalid (named in attributes); or the CSAT lock.",
                      (p.ValidationError, p.PlainError), None),
    "RateLimited": ("Too many requests from this address.", (p.DetailedError,), RETRY_AFTER),
    "Unavailable": ("The store cannot take requests right now.", (p.DetailedError,),
                    RETRY_AFTER),
    "AgentUnauthorized": ("No token, a wrong token, or not allowed here.",
                          (p.PlainError, p.ErrorList), None),
    "LimitExceeded": ("The account's limit (Platform API limits) is reached.",
                      (p.PlainError,), None),
    "AgentNotFound": ("No such resource in this account.", (p.PlainError, p.StatusError), None),
    "PlatformUnauthorized": ("A wrong token, or not this platform app's resource.",
                             (p.PlainError,), None),
    "HighLevelBadRequest": ("Malformed body or unknown Version.", (p.HighLevelError,), None),
    "HighLevelUnauthorized": ("A wrong token, or no access to the location.",
                              (p.HighLevelError,), None),
    "HighLevelUnprocessable": ("locationId or contactId unknown or invalid.",
                               (p.HighLevelError,), None),
}  # fmt: skip
COMMON = {400: "BadRequest", 413: "PayloadTooLarge", 429: "RateLimited", 503: "Unavailable"}
ERRORS: dict[Auth, dict[int, str]] = {
    Auth.NONE: {404: "NotFound", 429: "RateLimited", 503: "Unavailable"},
    Auth.PUBLIC: {**COMMON, 403: "OriginForbidden", 404: "NotFound", 422: "Unprocessable"},
    Auth.AGENT: {**COMMON, 401: "AgentUnauthorized", 404: "AgentNotFound",
                 422: "Unprocessable"},
    Auth.PLATFORM: {**COMMON, 401: "PlatformUnauthorized", 404: "AgentNotFound",
                    422: "Unprocessable"},
    Auth.HIGHLEVEL: {**COMMON, 400: "HighLevelBadRequest", 401: "HighLevelUnauthorized",
                     422: "HighLevelUnprocessable"},
}  # fmt: skip
EXTRA_ERRORS = {401: "HmacFailed", 402: "LimitExceeded"}
DESCRIPTION = """\
inboxgate's HTTP APIs: the public client API (Chatwoot-compatible, for customers), the agent \
API and Platform API subset it serves (Chatwoot-compatible, for agents, bots and back \
offices), and a GoHighLevel-compatible conversation create. Realtime updates are on the \
`/cable` websocket (Action Cable), not described here. Every error is a JSON body: see each \
operation's responses."""


def openapi_path(path: str) -> str:
    """``/api/v1/accounts/{account_id:int}`` → ``/api/v1/accounts/{account_id}``."""
    return _PATH_PARAM.sub(lambda m: "{" + m[1] + "}", path)


def _members(kind: Any) -> tuple[Any, ...]:
    """The alternatives of a union (msgspec does not describe unions of several Structs)."""
    if isinstance(kind, types.UnionType) or get_origin(kind) is Union:
        return get_args(kind)
    return (kind,)


class _Schemas:
    """Every type the document names, described once by msgspec."""

    def __init__(self, kinds: list[Any]) -> None:
        wanted = list(dict.fromkeys(m for kind in kinds for m in _members(kind)))
        wanted = [kind for kind in wanted if kind is not type(None)]
        found, self.components = msgspec.json.schema_components(wanted, ref_template=REF)
        self.by_type = dict(zip(wanted, found, strict=True))

    def of(self, kind: Any) -> dict[str, Any]:
        options = [{"type": "null"} if m is type(None) else self.by_type[m] for m in _members(kind)]
        return options[0] if len(options) == 1 else {"anyOf": options}

    def multipart(self, body: type) -> dict[str, Any]:
        """The body's text fields as form fields, and the files as ``attachments[]``."""
        properties = self.components[body.__name__]["properties"]
        fields: dict[str, Any] = {
            name: {"type": "string"}
            for name, schema in properties.items()
            if schema.get("type") == "string" or {"type": "string"} in schema.get("anyOf", ())
        }
        fields["attachments[]"] = {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "Files (any field name is taken as an attachment).",
        }
        return {"type": "object", "properties": fields}


def _parameter(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer" if param.kind is int else "string"}
    if param.enum:
        schema["enum"] = list(param.enum)
    found: dict[str, Any] = {"name": param.name, "in": param.location, "schema": schema}
    if param.required:
        found["required"] = True
    if param.description:
        found["description"] = param.description
    return found


def _path_parameters(path: str) -> list[dict[str, Any]]:
    found = []
    for name in _PATH_PARAM.findall(path):
        schema, description = PATH_PARAMS[name]
        found.append(
            {"name": name, "in": "path", "required": True, "schema": schema,
             "description": description}
        )  # fmt: skip
    return found


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    description = op.description
    if op.bots:
        description = (description + " Agent bot tokens are accepted too.").strip()
    found: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary,
                             "tags": [op.tag]}  # fmt: skip
    if description:
        found["description"] = description
    if op.auth in SECURITY:
        found["security"] = SECURITY[op.auth]
    parameters = _path_parameters(op.path) + [_parameter(q) for q in (*op.query, *op.headers)]
    if parameters:
        found["parameters"] = parameters
    if op.body is not None:
        content: dict[str, Any] = {"application/json": {"schema": schemas.of(op.body)}}
        if op.multipart:
            content["multipart/form-data"] = {"schema": schemas.multipart(op.body)}
        found["requestBody"] = {"required": False, "content": content}
    ok: dict[str, Any] = {"description": "OK"}
    if op.binary:
        ok["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    elif isinstance(op.response, dict):
        ok["content"] = {"application/json": {"schema": op.response}}
    elif op.response is not None:
        ok["content"] = {"application/json": {"schema": schemas.of(op.response)}}
    else:
        ok["description"] = "OK, with an empty body"
    errors = dict(ERRORS[op.auth])
    errors.update({status: EXTRA_ERRORS[status] for status in op.extra_errors})
    responses: dict[str, Any] = {"200": ok}
    for status in sorted(errors):
        responses[str(status)] = {"$ref": f"#/components/responses/{errors[status]}"}
    found["responses"] = responses
    return found


def _error_responses(schemas: _Schemas) -> dict[str, Any]:
    found = {}
    for name, (description, bodies, headers) in ERROR_RESPONSES.items():
        kinds = [schemas.of(body) for body in bodies]
        schema = kinds[0] if len(kinds) == 1 else {"anyOf": kinds}
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
        if headers:
            response["headers"] = headers
        found[name] = response
    return found


def _version() -> str:
    try:
        return metadata.version("inboxgate")
    except metadata.PackageNotFoundError:  # a checkout run without installing it
        return "0"


def build_document(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """The whole document, a JSON-ready dict."""
    kinds: list[Any] = [body for _, bodies, _ in ERROR_RESPONSES.values() for body in bodies]
    for op in operations:
        kinds += [op.body] if op.body is not None else []
        if op.response is not None and not isinstance(op.response, dict):
            kinds.append(op.response)
    schemas = _Schemas(kinds)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "inboxgate", "version": _version(), "description": DESCRIPTION},
        "tags": [{"name": tag} for tag in TAGS],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "responses": _error_responses(schemas),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
