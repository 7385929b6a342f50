"""The CSAT survey API by conversation uuid (§3.14)."""

from __future__ import annotations

from client_sdk import protocol as p

from ..domain import csat as ops
from ..views import csat as views
from .context import Context
from .conversations import submitted_values


class CsatService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def show(self, uuid: str) -> p.CsatSurvey:
        return views.csat_survey(await self.ctx.store.read(ops.survey, uuid))

    async def submit(
        self, uuid: str, req: p.CsatSurveyUpdateRequest, base_url: str
    ) -> p.CsatSurvey:
        message = req.message or p.CsatSurveyMessageInput()
        values = submitted_values(p.MessageUpdateRequest(submitted_values=message.submitted_values))
        link = self.ctx.files.link_builder(self.ctx.settings.public_url or base_url)
        answered, result = await self.ctx.store.write(
            ops.submit, uuid, values, self.ctx.settings.csat_lock_days, link, self.ctx.now()
        )
        self.ctx.emitted(result.events)
        return views.csat_survey(answered)
