"""Account webhooks (reference agent §3.7): validation, the SSRF check, shapes; and the
outbox as administrators see it (inboxgate's: recent deliveries, retrying a dead one).

Administrators only; the routes check the role. Validation failures are Chatwoot's 422
``{"message", "attributes"}``; a URL that reaches a loopback, private or link-local address is
refused the same way unless ``INBOXGATE_WEBHOOK_ALLOW_PRIVATE`` is set.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from client_sdk import protocol as p

from ..domain import outbox
from ..domain import webhooks as ops
from ..domain.errors import InvalidAttribute
from ..errors import param_missing
from ..views import public as presenters
from ..webhooks import guard
from .context import Context

MAX_NAME_LENGTH = 255
DELIVERY_STATUSES = (outbox.PENDING, outbox.DELIVERED, outbox.DEAD)
DELIVERIES_PAGE = 100


def webhook_shape(view: ops.WebhookView) -> p.Webhook:
    hook = view.webhook
    return p.Webhook(
        id=hook.id, name=hook.name, url=hook.url, account_id=hook.account_id,
        subscriptions=hook.subscriptions,
        inbox=p.WebhookInboxRef(id=hook.inbox_id, name=view.inbox_name or "")
        if hook.inbox_id is not None
        else UNSET,
        secret=hook.secret,
    )  # fmt: skip


def delivery_shape(d: outbox.Delivery) -> p.WebhookDelivery:
    return p.WebhookDelivery(
        id=d.uuid, event=d.event, receiver=d.receiver, webhook_id=d.webhook_id,
        inbox_id=d.inbox_id, url=d.url, status=d.status, attempts=d.attempts,
        last_error=d.last_error, last_status_code=d.last_status_code,
        created_at=presenters.iso_required(d.created_at),
        next_attempt_at=presenters.iso(d.next_attempt_at) if d.status == "pending" else None,
        delivered_at=presenters.iso(d.delivered_at),
    )  # fmt: skip


def _fields(req: p.WebhookRequest) -> p.WebhookFields:
    """Rails wraps top-level keys under ``webhook`` unless the body already has that key."""
    fields = req.webhook if req.webhook is not None else req
    given = (fields.url, fields.name, fields.subscriptions, fields.inbox_id)
    if all(value is UNSET for value in given):
        raise param_missing("webhook")
    return fields


def _subscriptions(value: Any) -> list[str]:
    if value is None:
        return list(p.DEFAULT_WEBHOOK_SUBSCRIPTIONS)
    events = list(dict.fromkeys(value))
    if not events or any(event not in p.WEBHOOK_EVENTS for event in events):
        raise InvalidAttribute("Subscriptions Invalid events", ["subscriptions"])
    return events


class WebhookService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _url(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidAttribute("Url is invalid", ["url"])
        url = value.strip()
        try:
            guard.parse(url)
        except guard.UrlRefused:
            raise InvalidAttribute("Url is invalid", ["url"]) from None
        try:
            await guard.check(url, allow_private=self.ctx.settings.webhook_allow_private)
        except guard.UrlUnresolvable:
            pass  # no address yet: every delivery checks again
        except guard.UrlRefused as exc:
            raise InvalidAttribute(f"Url is not allowed: {exc}", ["url"]) from None
        return url

    async def _changes(self, fields: p.WebhookFields, *, create: bool) -> ops.Changes:
        changes = ops.Changes()
        if create or fields.url is not UNSET:
            changes.url = await self._url(None if fields.url is UNSET else fields.url)
        if fields.name is not UNSET:
            if fields.name is not None and len(fields.name) > MAX_NAME_LENGTH:
                raise InvalidAttribute(
                    f"Name is too long (maximum is {MAX_NAME_LENGTH} characters)", ["name"]
                )
            changes.name = fields.name
        if fields.subscriptions is not UNSET:
            changes.subscriptions = _subscriptions(fields.subscriptions)
        if fields.inbox_id is not UNSET:
            changes.inbox_id = fields.inbox_id
        return changes

    async def list(self, account_id: int) -> p.WebhookListEnvelope:
        views = await self.ctx.store.read(ops.list_webhooks, account_id)
        return p.WebhookListEnvelope(
            payload=p.WebhookListPayload(webhooks=[webhook_shape(v) for v in views])
        )

    async def create(self, account_id: int, req: p.WebhookRequest) -> p.WebhookEnvelope:
        changes = await self._changes(_fields(req), create=True)
        view = await self.ctx.store.write(ops.create_webhook, account_id, changes, self.ctx.now())
        return p.WebhookEnvelope(payload=p.WebhookPayload(webhook=webhook_shape(view)))

    async def update(
        self, account_id: int, webhook_id: int, req: p.WebhookRequest
    ) -> p.WebhookEnvelope:
        await self.ctx.store.read(ops.get_webhook, account_id, webhook_id)  # 404 before 422
        changes = await self._changes(_fields(req), create=False)
        view = await self.ctx.store.write(
            ops.update_webhook, account_id, webhook_id, changes, self.ctx.now()
        )
        return p.WebhookEnvelope(payload=p.WebhookPayload(webhook=webhook_shape(view)))

    async def delete(self, account_id: int, webhook_id: int) -> None:
        await self.ctx.store.write(ops.delete_webhook, account_id, webhook_id, self.ctx.now())

    async def deliveries(
        self, account_id: int, status: str | None, webhook_id: int | None
    ) -> p.WebhookDeliveriesEnvelope:
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidAttribute(
                f"Status must be one of {', '.join(DELIVERY_STATUSES)}", ["status"]
            )
        found = await self.ctx.store.read(
            outbox.list_deliveries, account_id, status=status, webhook_id=webhook_id,
            newest_first=True, limit=DELIVERIES_PAGE,
        )  # fmt: skip
        return p.WebhookDeliveriesEnvelope(
            payload=p.WebhookDeliveriesPayload(deliveries=[delivery_shape(d) for d in found])
        )

    async def redeliver(self, account_id: int, delivery_id: str) -> p.WebhookDelivery:
        delivery = await self.ctx.store.write(
            outbox.redeliver, account_id, delivery_id, self.ctx.now()
        )
        return delivery_shape(delivery)

    async def inbox_secret(self, account_id: int, inbox_id: int) -> p.InboxWebhookSecret:
        result: p.InboxWebhookSecret = await self.ctx.store.write(
            ops.inbox_secret, account_id, inbox_id, self.ctx.now()
        )
        return result
