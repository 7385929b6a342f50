"""Webhooks on the agent API (reference agent §3.7): administrators only; an agent gets
Chatwoot's 401 ``{"error":"You are not authorized to do this action"}`` on every action,
listing included.

inboxgate's own, also administrators only: ``GET /inboxes/{id}/webhook_secret``, the secret
that signs the deliveries to an API inbox's ``webhook_url`` (Chatwoot 4.13 keeps it in
``channel_api.secret``); ``GET /webhook_deliveries`` (``?status=dead``, ``?webhook_id=``), the
latest deliveries of the account; ``POST /webhook_deliveries/{id}/retry``, a dead one again.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_sdk import protocol as p

from ..http import empty_response, int_param, json_response, read_params
from ..services.agent_auth import Actor
from ..services.context import Context
from ..services.webhooks import WebhookService
from .agent_routing import account_route


class WebhookApi:
    """The agent API's webhook handlers (reference agent §3.8)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.service = WebhookService(self.ctx)

    async def body(self, request: Request) -> p.WebhookRequest:
        params = await read_params(request, max_json=self.ctx.settings.max_json_bytes, max_files=0)
        return params.to(p.WebhookRequest)

    async def collection(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()
        if request.method == "GET":
            return json_response(await self.service.list(actor.account_id))
        return json_response(await self.service.create(actor.account_id, await self.body(request)))

    async def member(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()
        webhook_id = int_param(request.path_params["webhook_id"], "webhook")
        if request.method == "DELETE":
            await self.service.delete(actor.account_id, webhook_id)
            return empty_response()
        req = await self.body(request)
        return json_response(await self.service.update(actor.account_id, webhook_id, req))

    async def deliveries(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()
        got = await read_params(request, max_json=self.ctx.settings.max_json_bytes, max_files=0)
        values = got.values
        status = values.get("status") or None
        raw_webhook = values.get("webhook_id") or None
        webhook_id = int_param(raw_webhook, "webhook") if raw_webhook is not None else None
        if status is not None and not isinstance(status, str):
            status = None
        return json_response(await self.service.deliveries(actor.account_id, status, webhook_id))

    async def redeliver(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()
        delivery = await self.service.redeliver(
            actor.account_id, request.path_params["delivery_id"]
        )
        worker = getattr(request.app.state, "webhooks", None)
        if worker is not None:
            worker.wake()
        return json_response(delivery)

    async def inbox_secret(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()
        inbox_id = int_param(request.path_params["inbox_id"], "inbox")
        return json_response(await self.service.inbox_secret(actor.account_id, inbox_id))

    def routes(self) -> list[Route]:
        return [
            account_route(self.ctx, "/webhooks", self.collection, ["GET", "POST"]),
            # Ids are checked after authentication: ``/webhooks/abc`` is a 401 or Chatwoot's 404.
            account_route(
                self.ctx, "/webhooks/{webhook_id}", self.member, ["PATCH", "PUT", "DELETE"]
            ),
            account_route(
                self.ctx, "/inboxes/{inbox_id}/webhook_secret", self.inbox_secret, ["GET"]
            ),
            account_route(self.ctx, "/webhook_deliveries", self.deliveries, ["GET"]),
            account_route(
                self.ctx, "/webhook_deliveries/{delivery_id}/retry", self.redeliver, ["POST"]
            ),
        ]


def webhook_routes(ctx: Context) -> list[Route]:
    return WebhookApi(ctx).routes()
