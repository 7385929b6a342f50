"""The CSAT survey API by conversation uuid (§3.14)."""

from __future__ import annotations

from client_sdk import protocol as p

from ..domain import csat as ops
from ..domain.messages import MessageResult
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
        answered, _ = await self.ctx.store.write_on_commit(
            self._emit, ops.submit, uuid, values, self.ctx.settings.csat_lock_days, link,
            self.ctx.now(),
        )  # fmt: skip
        return views.csat_survey(answered)

    def _emit(self, result: tuple[ops.Survey, MessageResult]) -> None:
        self.ctx.emitted(result[1].events)
