"""Who hears what on ``/cable`` (reference/chatwoot-public-api.md §6.5-§6.7), over real sockets:
every event the public API can cause reaches exactly its subscribers, in order, and nobody else.

Each test gets a fresh account (``tenant``): an administrator (hears every inbox), an agent who is
a member of the inbox, an "outsider" agent of the account's other inbox. Negative checks use a
marker event instead of a sleep (see ``tests.cable_socket_helpers``). Typing stops by itself
after ``INBOXGATE_TYPING_TIMEOUT`` seconds, 1 here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient
from tests.cable_socket_helpers import (
    Customer,
    Tenant,
    data,
    event_name,
    next_event,
    next_events,
    next_named,
    subscribe_ok,
    summary,
)
from tests.server_helpers import GatewayProcess, gateway_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

TYPING_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("cable-fanout")
    with gateway_server(root, INBOXGATE_TYPING_TIMEOUT=str(int(TYPING_TIMEOUT))) as started:
        yield started


async def welcome(cable: CableClient, *identifiers: str) -> CableClient:
    await cable.expect(cp.Welcome)
    for identifier in identifiers:
        await subscribe_ok(cable, identifier)
    return cable


def assert_conversation(frame: cp.Broadcast, tenant: Tenant, customer: Customer, conv: int) -> None:
    payload = data(frame)
    assert payload["id"] == conv
    assert payload["account_id"] == tenant.account_id
    assert payload["contact_inbox"]["source_id"] == customer.source_id
    assert payload["meta"]["sender"]["id"] == customer.id
    assert payload["meta"]["sender"]["type"] == "contact"
    assert "performer" not in payload  # public-API actions are nobody's


def assert_message(frame: cp.Broadcast, sent: dict[str, Any], customer: Customer) -> None:
    payload = data(frame)
    assert payload["id"] == sent["id"]
    assert payload["content"] == sent["content"]
    assert payload["conversation_id"] == sent["conversation_id"]
    assert payload["message_type"] == 0
    assert payload["sender"]["type"] == "contact"
    assert payload["sender"]["id"] == customer.id
    assert "performer" not in payload


async def test_conversations_and_messages_reach_exactly_their_audience(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    alice = await tenant.customer(http, name="Alice")
    bob = await tenant.customer(http, name="Bob")
    olga = await tenant.customer(http, inbox=tenant.other_inbox, name="Olga")
    url = server.ws_url("/cable")
    async with (
        CableClient.connect(url, protocol=cp.JSON) as a_cable,
        CableClient.connect(url, protocol=cp.MSGPACK) as b_cable,
        CableClient.connect(url, protocol=cp.EXT_JSON) as admin_cable,
        CableClient.connect(url, protocol=cp.EXT_MSGPACK) as agent_cable,
        CableClient.connect(url, protocol=None) as outsider_cable,
    ):
        await welcome(a_cable, alice.ident())
        await welcome(b_cable, bob.ident())
        await welcome(admin_cable, tenant.agent_ident(tenant.admin))
        await welcome(agent_cable, tenant.agent_ident(tenant.agent))
        await welcome(outsider_cable, tenant.agent_ident(tenant.outsider))

        conv_a = await alice.start_conversation()  # 1. heard by alice, admin, agent
        hello = await alice.say(conv_a, "hello", echo_id="a-1")  # 2. same audience
        conv_o = await olga.start_conversation()  # 3. the other inbox: admin, outsider
        conv_b = await bob.start_conversation()  # 4. bob, admin, agent
        marker = await alice.say(conv_a, "marker")  # 5. alice, admin, agent
        olga_says = await olga.say(conv_o, "hi")  # 6. admin, outsider

        created, said, heard_marker = await next_events(a_cable, 3)
        assert summary([created, said, heard_marker]) == [
            ("conversation.created", conv_a),
            ("message.created", hello["id"]),
            ("message.created", marker["id"]),
        ]  # nothing of olga's or bob's in between
        assert_conversation(created, tenant, alice, conv_a)
        assert data(created)["inbox_id"] == tenant.inbox["id"]
        assert data(created)["status"] == "open"
        assert_message(said, hello, alice)
        assert data(said)["echo_id"] == "a-1"

        # Bob's first event is his own conversation: none of alice's reached him.
        first = await next_event(b_cable)
        assert summary([first]) == [("conversation.created", conv_b)]
        assert_conversation(first, tenant, bob, conv_b)

        expected_admin = [
            ("conversation.created", conv_a),
            ("message.created", hello["id"]),
            ("conversation.created", conv_o),
            ("conversation.created", conv_b),
            ("message.created", marker["id"]),
            ("message.created", olga_says["id"]),
        ]
        admin_frames = await next_events(admin_cable, 6)
        assert summary(admin_frames) == expected_admin
        assert_message(admin_frames[1], hello, alice)
        assert data(admin_frames[2])["inbox_id"] == tenant.other_inbox["id"]

        # The member agent hears its inbox, not the other one.
        agent_frames = await next_events(agent_cable, 4)
        assert summary(agent_frames) == [expected_admin[i] for i in (0, 1, 3, 4)]

        # The outsider hears only the other inbox: olga's conversation comes first.
        outsider_frames = await next_events(outsider_cable, 2)
        assert summary(outsider_frames) == [expected_admin[i] for i in (2, 5)]
        assert_conversation(outsider_frames[0], tenant, olga, conv_o)


async def test_echo_id_round_trip(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    alice = await tenant.customer(http, name="Alice")
    bob = await tenant.customer(http, name="Bob")
    conv_a = await alice.start_conversation()
    conv_b = await bob.start_conversation()
    url = server.ws_url("/cable")
    echo = f"tmp-{uuid.uuid4()}"
    async with (
        CableClient.connect(url, protocol=cp.EXT_JSON) as a_cable,
        CableClient.connect(url, protocol=cp.JSON) as b_cable,
    ):
        await welcome(a_cable, alice.ident())
        await welcome(b_cable, bob.ident())

        sent = await alice.say(conv_a, "optimistic", echo_id=echo)
        assert "echo_id" not in sent  # only the event carries it
        frame = await next_named(a_cable, "message.created")
        assert data(frame)["id"] == sent["id"]
        assert data(frame)["echo_id"] == echo

        # A retried send returns the original and broadcasts nothing new.
        retry = await alice.say(conv_a, "optimistic", echo_id=echo)
        assert retry["id"] == sent["id"]
        plain = await alice.say(conv_a, "no echo id")
        frame = await next_named(a_cable, "message.created")
        assert data(frame)["id"] == plain["id"]
        assert "echo_id" not in data(frame)

        # Another customer's subscription heard none of it: its first event is its own.
        mine = await bob.say(conv_b, "mine", echo_id="b-1")
        frame = await next_named(b_cable, "message.created")
        assert (data(frame)["id"], data(frame)["echo_id"]) == (mine["id"], "b-1")


async def test_resolve_rate_read_and_reopen(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """Status changes, activity messages (agents only), the CSAT survey and its rating
    (``message.updated``), ``conversation.read`` (agents only), the reopen."""
    alice = await tenant.customer(http, name="Alice")
    conv = await alice.start_conversation()
    await alice.say(conv, "before anyone listens")
    url = server.ws_url("/cable")
    async with (
        CableClient.connect(url, protocol=cp.EXT_MSGPACK) as contact,
        CableClient.connect(url, protocol=cp.JSON) as admin,
        CableClient.connect(url, protocol=cp.EXT_JSON) as agent,
    ):
        await welcome(contact, alice.ident())
        await welcome(admin, tenant.agent_ident(tenant.admin))
        await welcome(agent, tenant.agent_ident(tenant.agent))

        resolved = await alice.resolve(conv)
        assert resolved["status"] == "resolved"
        status, survey = await next_events(contact, 2)  # no activity message for the contact
        assert summary([status]) == [("conversation.status_changed", conv)]
        assert data(status)["status"] == "resolved"
        assert event_name(survey) == "message.created"
        assert data(survey)["content_type"] == "input_csat"
        assert data(survey)["message_type"] == 3
        survey_id = data(survey)["id"]

        await alice.rate(conv, survey_id, 5)
        rated = await next_named(contact, "message.updated")
        assert data(rated)["id"] == survey_id
        assert "content_attributes" in data(rated)["previous_changes"]
        rating = data(rated)["content_attributes"]["submitted_values"]
        assert rating["csat_survey_response"]["rating"] == 5

        # update_last_seen: the survey (and the activity message) become read; agents also
        # hear conversation.read. Then alice writes again, which reopens the conversation.
        await alice.seen(conv)
        again = await alice.say(conv, "one more thing")
        read, reopened, status = await next_events(contact, 3)  # no conversation.read
        assert summary([read, reopened, status]) == [
            ("message.updated", survey_id),
            ("message.created", again["id"]),
            ("conversation.status_changed", conv),
        ]
        assert data(read)["status"] == "read"
        assert data(read)["previous_changes"]["status"] == ["sent", "read"]
        assert data(status)["status"] == "open"

        for cable in (admin, agent):
            resolved_frames = await next_events(cable, 4)
            assert [event_name(f) for f in resolved_frames] == [
                "conversation.status_changed", "message.created", "message.created",
                "message.updated",
            ]  # fmt: skip
            activity = data(resolved_frames[1])
            assert activity["message_type"] == 2  # "Conversation was resolved by Alice"
            assert "resolved" in activity["content"]
            assert data(resolved_frames[2])["id"] == survey_id
            assert data(resolved_frames[3])["id"] == survey_id

            later = summary(await next_events(cable, 5))
            assert sorted(later, key=repr) == sorted(
                [
                    ("message.updated", activity["id"]),
                    ("message.updated", survey_id),
                    ("conversation.read", conv),
                    ("message.created", again["id"]),
                    ("conversation.status_changed", conv),
                ],
                key=repr,
            )
            assert later.index(("message.created", again["id"])) < later.index(
                ("conversation.status_changed", conv)
            )


async def test_verified_sessions_share_events_but_not_typing(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """An HMAC-verified contact on two devices: message and conversation events reach every
    verified session; typing reaches none of them; an unsigned session of the same identifier
    and a different contact hear nothing."""
    who = f"user-{uuid.uuid4().hex[:12]}"
    phone = await tenant.customer(http, identifier=who, name="Vera")
    laptop = await tenant.customer(http, identifier=who, name="Vera")
    assert phone.id == laptop.id
    assert phone.pubsub_token != laptop.pubsub_token
    unsigned = await tenant.customer(http, identifier=who, signed=False, name="Vera")
    stranger = await tenant.customer(http, name="Stranger")
    url = server.ws_url("/cable")
    async with (
        CableClient.connect(url, protocol=cp.JSON) as phone_cable,
        CableClient.connect(url, protocol=cp.EXT_MSGPACK) as laptop_cable,
        CableClient.connect(url, protocol=cp.JSON) as unsigned_cable,
        CableClient.connect(url, protocol=cp.JSON) as stranger_cable,
        CableClient.connect(url, protocol=cp.EXT_JSON) as admin_cable,
    ):
        await welcome(phone_cable, phone.ident())
        await welcome(laptop_cable, laptop.ident())
        await welcome(unsigned_cable, unsigned.ident())
        await welcome(stranger_cable, stranger.ident())
        await welcome(admin_cable, tenant.agent_ident(tenant.admin))

        conv = await phone.start_conversation()
        hello = await phone.say(conv, "from my phone", echo_id="p-1")
        await phone.typing(conv, "on")
        await phone.typing(conv, "off")
        conv_u = await unsigned.start_conversation()
        conv_s = await stranger.start_conversation()
        marker = await phone.say(conv, "marker")

        expected = [
            ("conversation.created", conv),
            ("message.created", hello["id"]),
            ("message.created", marker["id"]),
        ]
        for cable in (phone_cable, laptop_cable):
            frames = await next_events(cable, 3)
            assert summary(frames) == expected  # no typing, nothing of the other sessions
            assert data(frames[1])["echo_id"] == "p-1"
        assert summary([await next_event(unsigned_cable)]) == [("conversation.created", conv_u)]
        assert summary([await next_event(stranger_cable)]) == [("conversation.created", conv_s)]

        admin_frames = await next_events(admin_cable, 7)
        assert [event_name(f) for f in admin_frames] == [
            "conversation.created", "message.created", "conversation.typing_on",
            "conversation.typing_off", "conversation.created", "conversation.created",
            "message.created",
        ]  # fmt: skip


def assert_typing(frame: cp.Broadcast, tenant: Tenant, customer: Customer, conv: int) -> None:
    payload = data(frame)
    assert payload["conversation"]["id"] == conv
    assert payload["user"]["type"] == "contact"
    assert payload["user"]["id"] == customer.id
    assert payload["is_private"] is False
    assert payload["account_id"] == tenant.account_id
    assert "performer" not in payload
    # Transient: never logged, so no stream position even on the extended protocol.
    assert frame.stream_id is msgspec.UNSET
    assert frame.epoch is msgspec.UNSET
    assert frame.offset is msgspec.UNSET


async def test_typing_reaches_agents_and_stops_by_itself(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    alice = await tenant.customer(http, name="Alice")
    olga = await tenant.customer(http, inbox=tenant.other_inbox, name="Olga")
    conv = await alice.start_conversation()
    url = server.ws_url("/cable")
    async with (
        CableClient.connect(url, protocol=cp.JSON) as contact,
        CableClient.connect(url, protocol=cp.EXT_JSON) as admin,
        CableClient.connect(url, protocol=cp.EXT_MSGPACK) as agent,
        CableClient.connect(url, protocol=cp.JSON) as outsider,
    ):
        await welcome(contact, alice.ident())
        await welcome(admin, tenant.agent_ident(tenant.admin))
        await welcome(agent, tenant.agent_ident(tenant.agent))
        await welcome(outsider, tenant.agent_ident(tenant.outsider))
        agents = (admin, agent)

        # Explicit on, then off.
        await alice.typing(conv, "on")
        await alice.typing(conv, "off")
        for cable in agents:
            on, off = await next_events(cable, 2)
            assert (event_name(on), event_name(off)) == (
                "conversation.typing_on",
                "conversation.typing_off",
            )
            assert_typing(on, tenant, alice, conv)
            assert_typing(off, tenant, alice, conv)

        # On, never renewed: the server turns it off after the timeout.
        await alice.typing(conv, "on")
        started = time.monotonic()
        for cable in agents:
            assert_typing(await next_named(cable, "conversation.typing_on"), tenant, alice, conv)
        for cable in agents:
            off = await next_named(cable, "conversation.typing_off", timeout=TYPING_TIMEOUT + 5)
            assert_typing(off, tenant, alice, conv)
        elapsed = time.monotonic() - started
        assert TYPING_TIMEOUT * 0.5 <= elapsed <= TYPING_TIMEOUT + 4, elapsed

        # Renewed after 0.6 s: the timeout counts from the renewal.
        await alice.typing(conv, "on")
        started = time.monotonic()
        await anyio.sleep(0.6)
        await alice.typing(conv, "on")
        for cable in agents:
            for _ in range(2):
                await next_named(cable, "conversation.typing_on")
        for cable in agents:
            await next_named(cable, "conversation.typing_off", timeout=TYPING_TIMEOUT + 5)
        assert time.monotonic() - started >= 0.6 + TYPING_TIMEOUT * 0.7

        # The typing contact heard none of it; neither did the agent of the other inbox.
        said = await alice.say(conv, "marker")
        assert summary([await next_event(contact)]) == [("message.created", said["id"])]
        conv_o = await olga.start_conversation()
        assert summary([await next_event(outsider)]) == [("conversation.created", conv_o)]
        for cable in agents:  # and no late typing_off after all that
            assert summary([await next_event(cable)]) == [("message.created", said["id"])]
