"""``POST /conversations/``: the GoHighLevel-compatible conversation create (seed 004)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_sdk import protocol as p

from .. import inputs
from ..errors import BadRequest, ValidationFailed
from ..http import json_response
from ..services.context import Context
from ..services.highlevel import HighLevelService, bad_request, bearer, unprocessable
from .errors import answering, public_error


class HighLevelApi:
    """The GoHighLevel-compatible conversation create."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.service = HighLevelService(self.ctx)

    async def create(self, request: Request) -> Response:
        body = await request.body()
        try:  # bounded as every body (gateway.inputs): no deep nesting, no NUL
            decoded = inputs.decode_json(body or b"{}")
            inputs.check_value("body", decoded)
            req = msgspec.convert(decoded, p.HighLevelConversationRequest)
        except ValidationFailed as exc:
            # JSON that parses but holds what no id can (NUL, an integer past 64 bits): a 422
            # naming it, as for any other id the self.service cannot use.
            raise unprocessable(exc.message) from None
        except (msgspec.DecodeError, BadRequest):
            raise bad_request() from None
        result = await self.service.create_conversation(
            bearer(request.headers.get("authorization")), request.headers.get("version"), req,
            str(request.base_url).rstrip("/"),
        )  # fmt: skip
        return json_response(result)

    def routes(self) -> list[Route]:
        endpoint = answering(public_error, self.create)
        return [
            Route("/conversations/", endpoint, methods=["POST"]),
            Route("/conversations", endpoint, methods=["POST"]),
        ]


def highlevel_routes(ctx: Context) -> list[Route]:
    return HighLevelApi(ctx).routes()
