"""Public API: CSAT (§3.13, §3.14, §5): the survey message, ratings, the 14-day lock, and the
uuid-based survey API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.domain import provisioning as prov
from tests.routes_helpers import ISO, NOT_FOUND, PUBLIC, T0, Env, EnvFactory

pytestmark = pytest.mark.anyio

DAY = 86_400.0
LOCKED = {"error": "You cannot update the CSAT survey after 14 days"}
SURVEY_KEYS = {
    "id", "csat_survey_response", "display_type", "content", "inbox_avatar_url", "inbox_name",
    "locale", "conversation_id", "created_at",
}  # fmt: skip
RECORD_KEYS = {
    "id", "account_id", "conversation_id", "message_id", "rating", "feedback_message",
    "contact_id", "assigned_agent_id", "created_at", "updated_at",
}  # fmt: skip


class Survey:
    def __init__(self, env: Env, source_id: str, display_id: int, conversation: dict[str, Any]):
        self.env = env
        self.source_id = source_id
        self.display_id = display_id
        self.uuid: str = conversation["uuid"]
        self.message: dict[str, Any] = conversation["messages"][-1]
        assert self.message["content_type"] == "input_csat"

    @property
    def message_url(self) -> str:
        url = self.env.conv_url(self.source_id, self.display_id)
        return f"{url}/messages/{self.message['id']}"

    @property
    def survey_url(self) -> str:
        return f"{PUBLIC}/csat_survey/{self.uuid}"


def answer(rating: Any, feedback: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"rating": rating}
    if feedback is not None:
        response["feedback_message"] = feedback
    return {"submitted_values": {"csat_survey_response": response}}


@pytest.fixture
async def survey(make_env: EnvFactory) -> AsyncIterator[Survey]:
    """A resolved conversation with a CSAT survey. Its internal id (2) differs from its
    display_id (1): another account's conversation is created first."""
    inbox = {"csat_survey_enabled": True, "csat_message": "How did we do?"}
    async with make_env(inbox=inbox) as env:
        other_account = await env.store.write(prov.create_account, "Other", env.clock())
        other_inbox = await env.store.write(
            prov.create_inbox, prov.NewInbox(account_id=other_account.id, name="X"), env.clock()
        )
        await env.session(other_inbox)
        source_id, cid = await env.session(name="Alice")
        await env.send(source_id, cid, content="help")
        r = await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
        assert r.status_code == 200
        yield Survey(env, source_id, cid, r.json())


async def test_survey_message(survey: Survey) -> None:
    assert survey.display_id == 1
    assert survey.message["content"] == "How did we do?"
    assert survey.message["message_type"] == 3
    assert survey.message["content_attributes"] == {"display_type": "emoji"}


async def test_show_survey(survey: Survey) -> None:
    r = await survey.env.client.get(survey.survey_url)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == SURVEY_KEYS
    assert body == {
        "id": survey.message["id"],
        "csat_survey_response": None,
        "display_type": "emoji",
        "content": "How did we do?",
        "inbox_avatar_url": "",
        "inbox_name": "Support API",
        "locale": "en",
        "conversation_id": 2,  # the internal id, not the display_id
        "created_at": "2026-01-10T12:00:00.000Z",
    }


async def test_submit_through_message_patch(survey: Survey) -> None:
    env = survey.env
    r = await env.client.patch(survey.message_url, json=answer(5, "Great!"))
    assert r.status_code == 200
    assert r.json()["content_attributes"] == {"display_type": "emoji", **answer(5, "Great!")}
    record = (await env.client.get(survey.survey_url)).json()["csat_survey_response"]
    assert set(record) == RECORD_KEYS
    assert record["rating"] == 5
    assert record["feedback_message"] == "Great!"
    assert record["message_id"] == survey.message["id"]
    assert record["conversation_id"] == 2
    assert record["assigned_agent_id"] is None
    assert isinstance(record["contact_id"], int)
    assert ISO.match(record["created_at"]) and ISO.match(record["updated_at"])
    # re-submission overwrites the same record
    env.clock.advance(60)
    assert (await env.client.put(survey.message_url, json=answer(2))).status_code == 200
    again = (await env.client.get(survey.survey_url)).json()["csat_survey_response"]
    assert (again["id"], again["rating"], again["feedback_message"]) == (record["id"], 2, None)
    assert again["updated_at"] > record["updated_at"]


async def test_submit_through_survey_api_is_synchronous(survey: Survey) -> None:
    env = survey.env
    r = await env.client.patch(survey.survey_url, json={"message": answer(4, "ok")})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == SURVEY_KEYS
    assert (
        body["csat_survey_response"]["rating"],
        body["csat_survey_response"]["feedback_message"],
    ) == (4, "ok")
    r = await env.client.put(survey.survey_url, json={"message": answer(1)})
    assert r.status_code == 200
    assert r.json()["csat_survey_response"]["rating"] == 1
    # the survey message shows what was submitted
    listed = await env.messages(survey.source_id, survey.display_id)
    assert listed[-1]["content_attributes"]["submitted_values"] == answer(1)["submitted_values"]


async def test_survey_api_without_answer_changes_nothing(survey: Survey) -> None:
    r = await survey.env.client.patch(survey.survey_url, json={})
    assert r.status_code == 200
    assert r.json()["csat_survey_response"] is None


async def test_string_rating_is_accepted(survey: Survey) -> None:
    env = survey.env
    r = await env.client.patch(survey.message_url, json=answer("4"))
    assert r.status_code == 200
    record = (await env.client.get(survey.survey_url)).json()["csat_survey_response"]
    assert record["rating"] == 4


@pytest.mark.parametrize("rating", [0, 6, 9, -1, "x", "", 4.5, True, None, [5]])
async def test_bad_rating_is_422(survey: Survey, rating: Any) -> None:
    env = survey.env
    for method, url, body in [
        ("PATCH", survey.message_url, answer(rating)),
        ("PUT", survey.survey_url, {"message": answer(rating)}),
    ]:
        r = await env.client.request(method, url, json=body)
        assert r.status_code == 422, (url, r.text)
        assert r.json() == {
            "message": "Rating must be an integer from 1 to 5",
            "attributes": ["rating"],
        }
    assert (await env.client.get(survey.survey_url)).json()["csat_survey_response"] is None


async def test_lock_after_14_calendar_days(survey: Survey) -> None:
    env = survey.env
    # T0 is 12:00 UTC; the end of the 14th calendar day after it is still open
    env.clock.now = T0 + 14 * DAY + 11 * 3600 + 59 * 60
    assert (await env.client.patch(survey.message_url, json=answer(3))).status_code == 200
    assert (
        await env.client.patch(survey.survey_url, json={"message": answer(3)})
    ).status_code == 200
    env.clock.now = T0 + 14 * DAY + 12 * 3600 + 1  # 00:00:01 of day 15
    for method, url, body in [
        ("PATCH", survey.message_url, answer(5)),
        ("PUT", survey.message_url, answer(5)),
        ("PATCH", survey.survey_url, {"message": answer(5)}),
        ("PUT", survey.survey_url, {"message": answer(5)}),
    ]:
        r = await env.client.request(method, url, json=body)
        assert (r.status_code, r.json()) == (422, LOCKED), (method, url)
    record = (await env.client.get(survey.survey_url)).json()["csat_survey_response"]
    assert record["rating"] == 3


async def test_lock_only_applies_to_csat_messages(survey: Survey) -> None:
    env = survey.env
    first = (await env.messages(survey.source_id, survey.display_id))[0]
    env.clock.advance(30 * DAY)
    url = env.conv_url(survey.source_id, survey.display_id) + f"/messages/{first['id']}"
    r = await env.client.patch(url, json={"submitted_values": {"value": "late"}})
    assert r.status_code == 200


async def test_unknown_uuid_is_404(survey: Survey) -> None:
    env = survey.env
    for method in ("GET", "PATCH", "PUT"):
        r = await env.client.request(
            method, f"{PUBLIC}/csat_survey/00000000-0000-4000-8000-000000000000", json={}
        )
        assert (r.status_code, r.json()) == (404, NOT_FOUND), method


async def test_conversation_without_survey_is_404(survey: Survey) -> None:
    env = survey.env
    conversation = await env.conversation(survey.source_id)
    for method in ("GET", "PATCH"):
        r = await env.client.request(
            method, f"{PUBLIC}/csat_survey/{conversation['uuid']}", json={"message": answer(5)}
        )
        assert (r.status_code, r.json()) == (404, NOT_FOUND), method


async def test_undeclared_survey_methods_are_404(survey: Survey) -> None:
    for method in ("POST", "DELETE"):
        r = await survey.env.client.request(method, survey.survey_url)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), method
    r = await survey.env.client.get(f"{PUBLIC}/csat_survey")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
