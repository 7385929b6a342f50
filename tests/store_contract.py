"""The Store contract: one suite that every Store implementation must pass.

An implementation's test module subclasses :class:`StoreContract` as ``Test...`` and overrides
the ``make_store`` fixture with a factory of *unstarted* stores that all open the same, fresh
database (so a test can close a store and re-open the data). Everything else comes from here::

    class TestSQLiteStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            return lambda: SQLiteStore(tmp_path / "db.sqlite")

Operations take ``now`` explicitly, so time is controlled by passing it; no clock is patched.
Helper operations below use only SQL that SQLite and PostgreSQL both accept.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from client_sdk import protocol as p
from gateway.domain import (
    agent_contacts,
    agent_messages,
    contacts,
    conversations,
    csat,
    events,
    incoming,
    message_reads,
    messages,
    notify,
)
from gateway.domain import provisioning as prov
from gateway.domain.errors import Flooded, InvalidAttribute, Locked, NotFound
from gateway.domain.tokens import BASE58
from gateway.store import Store, StoreUnavailable, UniqueViolation
from gateway.store.records import (
    Account,
    Attachment,
    Contact,
    ContactInbox,
    Conversation,
    Inbox,
    LoggedEvent,
    Message,
)
from gateway.store.sql import Op, execute, one, rows, scalar
from gateway.views import conversations as conversation_views
from gateway.views import csat as csat_views
from gateway.views import messages as message_views

pytestmark = pytest.mark.anyio

StoreFactory = Callable[[], Store]

# 2026-01-01T12:00:00Z: noon, so "calendar days" arithmetic never straddles midnight by accident.
T0 = 1_767_268_800.0
DAY = 86_400.0
TOKEN = re.compile(f"^[{BASE58}]{{24}}$")
HAIKU = re.compile(r"^[a-z]+-[a-z]+-\d{4}$")


def link(att: Attachment) -> str:
    return f"https://files.test/{att.id}/{att.file_name}"


# -- helper operations (test-only, portable SQL) ------------------------------------------------


def all_messages(conversation_id: int) -> Op[list[Message]]:
    result = yield from rows(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
        conversation_id,
    )
    return [Message.from_row(r) for r in result]


def set_blocked(contact_id: int, blocked: bool) -> Op[None]:
    yield from execute("UPDATE contacts SET blocked = ? WHERE id = ?", blocked, contact_id)


def get_conversation_row(conversation_id: int) -> Op[Conversation | None]:
    row = yield from one(
        f"SELECT {Conversation.COLUMNS} FROM conversations WHERE id = ?", conversation_id
    )
    return Conversation.from_row(row) if row else None


def session_by_id(contact_inbox_id: int) -> Op[ContactInbox | None]:
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE id = ?", contact_inbox_id
    )
    return ContactInbox.from_row(row) if row else None


def insert_account_then_fail(name: str, now: float) -> Op[None]:
    """Writes, then fails: the store must undo this operation's write and nothing else."""
    yield from execute(
        "INSERT INTO accounts (name, last_display_id, created_at, updated_at) VALUES (?, 0, ?, ?)",
        name, now, now,
    )  # fmt: skip
    raise InvalidAttribute("deliberate", ["base"])


def count_rows(table: str) -> Op[int]:
    return int((yield from scalar(f"SELECT COUNT(*) FROM {table}")))


# -- a small world to test in ------------------------------------------------------------------


class World(msgspec.Struct, kw_only=True):
    account: Account
    inbox: Inbox
    session: ContactInbox
    contact: Contact


async def make_inbox(store: Store, account_id: int, name: str = "Support", **opts: Any) -> Inbox:
    return await store.write(
        prov.create_inbox, prov.NewInbox(account_id=account_id, name=name, **opts), T0
    )


async def make_session(
    store: Store,
    inbox: Inbox,
    source_id: str | None = None,
    *,
    proved: str | None = None,
    now: float = T0,
    **fields: Any,
) -> tuple[ContactInbox, Contact]:
    """A public-API session; ``proved`` is the identifier its HMAC proved (None: no proof)."""
    session, contact, _created = await store.write(
        contacts.create_session,
        inbox.id, inbox.account_id, source_id, contacts.ContactFields(**fields), proved, now,
    )  # fmt: skip
    return session, contact


def ghost_session() -> ContactInbox:
    """A session record no row backs."""
    return ContactInbox(
        id=999_999, contact_id=999_999, inbox_id=1, source_id="ghost", pubsub_token="ghost",
        hmac_verified=False, created_at=T0, updated_at=T0,
    )  # fmt: skip


async def agent_session(
    store: Store, inbox: Inbox, contact: Contact, source_id: str
) -> ContactInbox:
    """An unverified session an agent made for a known contact (the agent API can)."""
    return await store.write(agent_contacts.attach, contact, inbox, source_id, T0)


async def make_world(store: Store, **inbox_opts: Any) -> World:
    account = await store.write(prov.create_account, "Acme", T0)
    inbox = await make_inbox(store, account.id, **inbox_opts)
    session, contact = await make_session(store, inbox, "device-1", name="Alice")
    return World(account=account, inbox=inbox, session=session, contact=contact)


async def new_conversation(
    store: Store, inbox: Inbox, session: ContactInbox, now: float = T0
) -> conversations.ConversationResult:
    return await store.write(conversations.create, inbox, session, {}, link, now)


async def send(
    store: Store,
    conversation: Conversation,
    contact_id: int,
    content: str | None = "hello",
    *,
    echo_id: str | None = None,
    attachments: list[messages.NewAttachment] | None = None,
    limit: int = 1000,
    now: float = T0,
) -> messages.MessageResult:
    return await store.write(
        incoming.create_incoming,
        conversation.id, contact_id, content, echo_id, attachments or [], limit, link, now,
    )  # fmt: skip


def streams_of(logged: list[LoggedEvent], name: str | None = None) -> list[str]:
    return [e.stream for e in logged if name is None or e.name == name]


def decoded(event: LoggedEvent) -> p.Event:
    return p.event_decoder.decode(event.payload)


class StoreContract:
    """Behaviour every Store must have. Subclasses provide ``make_store``."""

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        raise NotImplementedError("a Store test module overrides make_store")

    @pytest.fixture
    async def store(self, make_store: StoreFactory) -> AsyncIterator[Store]:
        store = make_store()
        await store.start()
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    async def world(self, store: Store) -> World:
        return await make_world(store, csat_survey_enabled=True)

    # -- lifecycle and migrations ------------------------------------------------------------

    async def test_migrations_are_idempotent(self, make_store: StoreFactory) -> None:
        store = make_store()
        await store.start()
        try:
            assert await store.migrate() == []
            assert await store.migrate() == []
        finally:
            await store.close()
        again = make_store()
        await again.start()
        try:
            assert await again.migrate() == []
        finally:
            await again.close()

    async def test_closed_store_refuses_work(self, make_store: StoreFactory) -> None:
        store = make_store()
        await store.start()
        await store.close()
        await store.close()  # twice is harmless
        with pytest.raises(StoreUnavailable):
            await store.write(prov.create_account, "x", T0)
        with pytest.raises(StoreUnavailable):
            await store.read(prov.get_account, 1)

    # -- what a commit sets off ----------------------------------------------------------------

    async def test_on_commit_has_the_result_before_the_caller_resumes(self, store: Store) -> None:
        seen: list[object] = []
        account = await store.write_on_commit(seen.append, prov.create_account, "Acme", T0)
        assert seen == [account]
        assert await store.read(prov.get_account, account.id) == account

    async def test_on_commit_is_not_called_for_a_write_that_failed(self, store: Store) -> None:
        def doomed(now: float) -> Op[None]:
            yield from prov.create_account("Doomed", now)
            raise Locked("refused after writing")

        seen: list[object] = []
        with pytest.raises(Locked):
            await store.write_on_commit(seen.append, doomed, T0)
        assert seen == []
        assert await store.read(prov.find_account_by_name, "Doomed") is None  # undone

    async def test_an_on_commit_failure_reaches_the_caller_and_the_write_stays(
        self, store: Store
    ) -> None:
        def broken(_: object) -> None:
            raise RuntimeError("the sink failed")

        with pytest.raises(RuntimeError, match="the sink failed"):
            await store.write_on_commit(broken, prov.create_account, "Kept", T0)
        assert await store.read(prov.find_account_by_name, "Kept") is not None
        # The store goes on serving.
        assert (await store.write(prov.create_account, "Next", T0)).name == "Next"

    # -- provisioning ------------------------------------------------------------------------

    async def test_account_and_inbox_defaults(self, store: Store) -> None:
        account = await store.write(prov.create_account, "Acme", T0)
        assert account.name == "Acme" and account.created_at == T0
        assert await store.read(prov.get_account, account.id) == account
        assert await store.read(prov.find_account_by_name, "Acme") == account
        assert await store.read(prov.get_account, account.id + 1000) is None

        inbox = await make_inbox(store, account.id)
        assert len(inbox.working_hours) == 7
        assert [wh["day_of_week"] for wh in inbox.working_hours] == list(range(7))
        monday, saturday = inbox.working_hours[1], inbox.working_hours[6]
        assert inbox.working_hours[0]["closed_all_day"] and saturday["closed_all_day"]
        assert (monday["open_hour"], monday["close_hour"]) == (9, 17)
        assert TOKEN.match(inbox.identifier) and TOKEN.match(inbox.hmac_token)
        assert inbox.identifier != inbox.hmac_token
        assert inbox.timezone == "UTC" and inbox.csat_display_type == "emoji"
        assert not inbox.hmac_mandatory and not inbox.csat_survey_enabled
        assert not inbox.lock_to_single_conversation and inbox.allowed_origins == []

        assert await store.read(prov.get_inbox, inbox.id) == inbox
        assert await store.read(prov.get_inbox_by_identifier, inbox.identifier) == inbox
        assert await store.read(prov.get_inbox_by_identifier, "nope") is None
        other = await make_inbox(store, account.id, "Sales", allowed_origins=["https://a.test"])
        assert other.identifier != inbox.identifier
        assert other.allowed_origins == ["https://a.test"]
        assert await store.read(prov.list_inboxes, account.id) == [inbox, other]

    async def test_inbox_needs_an_account(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await make_inbox(store, 4242)

    async def test_user_token_lookup(self, store: Store) -> None:
        account = await store.write(prov.create_account, "Acme", T0)
        user = await store.write(
            prov.create_user, account.id, "Agent", "Agent@Acme.test", "administrator", "s3cret", T0
        )
        assert user.email == "agent@acme.test"
        assert TOKEN.match(user.pubsub_token)
        assert await store.read(prov.find_user_by_token, "s3cret") == user
        assert await store.read(prov.find_user_by_token, "s3cret ") is None
        assert await store.read(prov.find_user_by_token, "wrong") is None
        assert await store.read(prov.find_user_by_email, " AGENT@acme.test") == user
        assert await store.read(prov.user_role, account.id, user.id) == "administrator"
        assert await store.read(prov.user_role, account.id, user.id + 1) is None
        # only the hash is stored
        stored = await store.read(
            scalar, "SELECT access_token_hash FROM users WHERE id = ?", user.id
        )
        assert stored == prov.hash_token("s3cret") and "s3cret" not in stored

    async def test_unique_violation_is_engine_neutral(self, store: Store) -> None:
        account = await store.write(prov.create_account, "Acme", T0)
        await store.write(prov.create_user, account.id, "A", "a@acme.test", "agent", "t-one", T0)
        with pytest.raises(UniqueViolation):
            await store.write(
                prov.create_user, account.id, "B", "A@acme.test", "agent", "t-two", T0
            )
        # Concurrent creates of one e-mail: one wins, every other one is told the same way.
        outcomes = await asyncio.gather(
            *(
                store.write(prov.create_user, account.id, "C", "c@acme.test", "agent", f"t{i}", T0)
                for i in range(4)
            ),
            return_exceptions=True,
        )
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
        assert all(isinstance(o, UniqueViolation) for o in outcomes if isinstance(o, Exception))
        # The failed writes left nothing behind (no account membership without its user).
        assert await store.read(count_rows, "users") == 2
        assert await store.read(count_rows, "account_users") == 2

    # -- contacts ----------------------------------------------------------------------------

    async def test_create_session_new_contact(self, store: Store) -> None:
        w = await make_world(store)
        session, contact, created = await store.write(
            contacts.create_session, w.inbox.id, w.account.id, None,
            contacts.ContactFields(name="Bob", email="Bob@X.test", custom_attributes={"a": 1}),
            None, T0,
        )  # fmt: skip
        assert created
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                            session.source_id)  # fmt: skip
        assert TOKEN.match(session.pubsub_token)
        assert not session.hmac_verified
        assert contact.name == "Bob" and contact.email == "bob@x.test"
        assert contact.custom_attributes == {"a": 1}
        assert contact.contact_type == "lead"
        assert session.contact_id == contact.id and session.inbox_id == w.inbox.id
        assert await store.read(contacts.get_session, w.inbox.id, session.source_id) == (
            session, contact,
        )  # fmt: skip
        assert await store.read(contacts.get_session_by_pubsub_token, session.pubsub_token) == (
            session
        )
        assert await store.read(contacts.get_session, w.inbox.id, "unknown") is None

    async def test_same_source_id_returns_session_unchanged(self, store: Store) -> None:
        w = await make_world(store)
        session, contact, created = await store.write(
            contacts.create_session, w.inbox.id, w.account.id, "device-1",
            contacts.ContactFields(name="Mallory", email="m@x.test"), None, T0 + 5,
        )  # fmt: skip
        assert not created
        assert session == w.session
        assert contact == w.contact  # no attribute update on attach

    async def test_only_a_proved_identifier_selects_a_contact(self, store: Store) -> None:
        w = await make_world(store)
        _, by_id = await make_session(store, w.inbox, "a1", proved="user-1", name="Id")
        _, by_email = await make_session(store, w.inbox, "b1", email="mail@X.test")
        _, by_phone = await make_session(store, w.inbox, "c1", phone_number="+15550001")
        assert len({by_id.id, by_email.id, by_phone.id, w.contact.id}) == 4
        assert by_id.identifier == "user-1"

        s, c = await make_session(store, w.inbox, "a2", proved="user-1", email="mail@x.test")
        assert c.id == by_id.id and c.name == "Id"  # the proved identifier, nothing else
        assert s.id != w.session.id and s.contact_id == by_id.id and s.hmac_verified
        # claims without proof: a contact of their own; what another holds stays a claim
        _, c = await make_session(
            store, w.inbox, "x1", identifier="user-1", email="MAIL@x.TEST",
            phone_number="+15550001",
        )  # fmt: skip
        assert c.id not in (by_id.id, by_email.id, by_phone.id)
        assert (c.identifier, c.email, c.phone_number) == (None, None, None)
        assert c.additional_attributes == {
            "claimed_identifier": "user-1", "claimed_email": "mail@x.test",
            "claimed_phone_number": "+15550001",
        }  # fmt: skip
        # a free e-mail or phone is kept; an unproved identifier never is
        _, c = await make_session(
            store, w.inbox, "x2", identifier="free-id", email="Free@x.test", phone_number="+155502"
        )
        assert (c.identifier, c.email, c.phone_number) == (None, "free@x.test", "+155502")
        assert c.additional_attributes == {"claimed_identifier": "free-id"}
        # another inbox of the same account reuses a proved identifier; another account does not
        sales = await make_inbox(store, w.account.id, "Sales")
        _, c = await make_session(store, sales, "a3", proved="user-1")
        assert c.id == by_id.id
        other_account = await store.write(prov.create_account, "Other", T0)
        other_inbox = await make_inbox(store, other_account.id)
        _, c = await make_session(store, other_inbox, "a1", proved="user-1")
        assert c.id != by_id.id and c.account_id == other_account.id

    async def test_default_name_is_a_haiku(self, store: Store) -> None:
        w = await make_world(store)
        _, contact = await make_session(store, w.inbox, "anon")
        assert HAIKU.match(contact.name), contact.name
        assert contact.contact_type == "visitor"

    async def test_verified_on_create_and_sticky(self, store: Store) -> None:
        w = await make_world(store)
        session, _ = await make_session(store, w.inbox, "v1", proved="u", identifier="u")
        assert session.hmac_verified
        # attaching again with a proof binds the existing session to the proved contact
        again, contact, created = await store.write(
            contacts.create_session, w.inbox.id, w.account.id, "device-1",
            contacts.ContactFields(), "u", T0,
        )  # fmt: skip
        assert not created and again.id == w.session.id and again.hmac_verified
        assert again.contact_id == session.contact_id == contact.id
        # sticky: unproved calls never reset it
        same, _, _ = await store.write(
            contacts.create_session, w.inbox.id, w.account.id, "device-1",
            contacts.ContactFields(), None, T0 + 2,
        )  # fmt: skip
        assert same.hmac_verified
        await store.write(
            contacts.update_contact, same.id, contacts.ContactFields(name="X"), None, T0 + 3
        )
        reread = await store.read(session_by_id, same.id)
        assert reread is not None and reread.hmac_verified
        with pytest.raises(NotFound):
            await store.write(contacts.prove, 999_999, "u", T0)

    async def test_prove_adopts_moves_or_creates(self, store: Store) -> None:
        w = await make_world(store)
        conv = (await new_conversation(store, w.inbox, w.session)).conversation
        await send(store, conv, w.contact.id, "mine")
        # an anonymous contact with one session adopts a free identifier
        session, contact = await store.write(contacts.prove, w.session.id, "alice", T0 + 1)
        assert contact.id == w.contact.id and contact.identifier == "alice"
        assert session.hmac_verified
        # proving another identifier moves this session and what it opened, nothing else
        second = await agent_session(store, w.inbox, contact, "second-device")
        other_conv = (await new_conversation(store, w.inbox, second)).conversation
        session, bob = await store.write(contacts.prove, w.session.id, "bob", T0 + 2)
        assert bob.id != contact.id and bob.identifier == "bob"
        assert session.contact_id == bob.id and session.hmac_verified
        moved = await store.read(get_conversation_row, conv.id)
        assert moved is not None and moved.contact_id == bob.id
        [msg] = await store.read(all_messages, conv.id)
        assert msg.sender_id == bob.id
        stayed = await store.read(get_conversation_row, other_conv.id)
        assert stayed is not None and stayed.contact_id == contact.id
        assert (await store.read(session_by_id, second.id)) == second
        # proving an identifier someone holds moves the session to exactly that contact
        session, back = await store.write(contacts.prove, w.session.id, "alice", T0 + 3)
        assert back.id == contact.id and session.contact_id == contact.id

    async def test_update_contact_applies_fields(self, store: Store) -> None:
        w = await make_world(store)
        await store.write(
            contacts.update_contact, w.session.id,
            contacts.ContactFields(custom_attributes={"plan": "pro", "nested": {"a": 1, "b": 1}}),
            None, T0,
        )  # fmt: skip
        updated = await store.write(
            contacts.update_contact, w.session.id,
            contacts.ContactFields(
                name="", email="Alice@Acme.TEST", phone_number="+15551234567",
                identifier="hijack", custom_attributes={"seats": 3, "nested": {"b": 2}},
            ),
            None, T0 + 10,
        )  # fmt: skip
        assert updated.id == w.contact.id
        assert updated.name == "Alice"  # blank is ignored
        assert updated.email == "alice@acme.test"
        assert updated.phone_number == "+15551234567"
        assert updated.identifier is None  # the public API never sets the identifier on update
        assert updated.custom_attributes == {"plan": "pro", "seats": 3, "nested": {"a": 1, "b": 2}}
        assert updated.contact_type == "lead"
        assert updated.updated_at == T0 + 10
        assert await store.read(contacts.get_contact, w.contact.id) == updated
        session = await store.read(session_by_id, w.session.id)
        assert session is not None and not session.hmac_verified
        with pytest.raises(NotFound):
            await store.write(contacts.update_contact, 999_999, contacts.ContactFields(), None, T0)

    async def test_update_contact_never_merges(self, store: Store) -> None:
        w = await make_world(store)
        _, owner = await make_session(
            store, w.inbox, "owner-device", name="Owner", email="owner@x.test",
            phone_number="+15550100", custom_attributes={"plan": "pro"},
        )  # fmt: skip
        updated = await store.write(
            contacts.update_contact, w.session.id,
            contacts.ContactFields(email="OWNER@x.test", phone_number="+15550100", name="Al"),
            None, T0 + 5,
        )  # fmt: skip
        assert updated.id == w.contact.id and updated.name == "Al"
        assert (updated.email, updated.phone_number) == (None, None)
        assert updated.additional_attributes == {
            "claimed_email": "owner@x.test", "claimed_phone_number": "+15550100",
        }  # fmt: skip
        assert await store.read(contacts.get_contact, owner.id) == owner
        moved = await store.read(session_by_id, w.session.id)
        assert moved is not None and moved.contact_id == w.contact.id

    async def test_update_with_a_proof_binds_then_updates(self, store: Store) -> None:
        w = await make_world(store)
        _, owner = await make_session(store, w.inbox, "o", proved="user-1", name="Owner")
        updated = await store.write(
            contacts.update_contact, w.session.id, contacts.ContactFields(name="Owner B"),
            "user-1", T0 + 5,
        )  # fmt: skip
        assert updated.id == owner.id and updated.name == "Owner B"
        moved = await store.read(session_by_id, w.session.id)
        assert moved is not None and moved.contact_id == owner.id and moved.hmac_verified

    # -- conversations -----------------------------------------------------------------------

    async def test_display_ids_per_account(self, store: Store) -> None:
        w = await make_world(store)
        sales = await make_inbox(store, w.account.id, "Sales")
        sales_session, _ = await make_session(store, sales, "s")
        ids = [
            (await new_conversation(store, w.inbox, w.session)).conversation.display_id,
            (await new_conversation(store, sales, sales_session)).conversation.display_id,
            (await new_conversation(store, w.inbox, w.session)).conversation.display_id,
        ]
        assert ids == [1, 2, 3]
        other = await make_world(store)
        first = (await new_conversation(store, other.inbox, other.session)).conversation
        assert first.display_id == 1 and first.account_id == other.account.id

    async def test_create_conversation(self, store: Store) -> None:
        w = await make_world(store)
        result = await store.write(
            conversations.create, w.inbox, w.session, {"plan": "pro"}, link, T0
        )
        conv = result.conversation
        assert conv.status == "open"
        assert conv.custom_attributes == {"plan": "pro"}
        assert conv.waiting_since == T0 and conv.last_activity_at == T0
        assert conv.contact_id == w.contact.id and conv.contact_inbox_id == w.session.id
        view = await store.read(conversation_views.public_conversation, conv, link)
        assert view.id == conv.display_id and view.uuid == conv.uuid
        assert view.messages == [] and view.contact.id == w.contact.id
        assert view.status == "open" and view.contact_last_seen_at == 0
        assert sorted(streams_of(result.events, "conversation.created")) == sorted(
            [events.inbox_stream(w.inbox.id), events.session_stream(w.session.id)]
        )
        assert await store.read(conversations.conversation_by_uuid, conv.uuid) == conv
        assert await store.read(conversations.conversation_by_uuid, "nope") is None

    async def test_visibility_rules(self, store: Store) -> None:
        w = await make_world(store)
        sales = await make_inbox(store, w.account.id, "Sales")
        _, c1 = await make_session(store, w.inbox, "zero", proved="u-1")
        s1 = await agent_session(store, w.inbox, c1, "one")
        s2 = await agent_session(store, w.inbox, c1, "two")
        s3 = await agent_session(store, sales, c1, "three")
        conv1 = (await new_conversation(store, w.inbox, s1)).conversation
        conv2 = (await new_conversation(store, w.inbox, s2)).conversation
        conv3 = (await new_conversation(store, sales, s3)).conversation
        stranger = (await new_conversation(store, w.inbox, w.session)).conversation

        listed = await store.read(conversations.session_conversations, s1)
        assert [c.display_id for c in listed] == [conv1.display_id]
        seen = await store.read(conversations.conversation_for_session, s1, conv1.display_id)
        assert seen == conv1
        for hidden in (conv2, conv3, stranger):
            with pytest.raises(NotFound):
                await store.read(conversations.conversation_for_session, s1, hidden.display_id)

        verified, contact = await store.write(contacts.prove, s1.id, "u-1", T0)
        assert contact.id == c1.id and verified.hmac_verified
        listed = await store.read(conversations.session_conversations, verified)
        assert [c.display_id for c in listed] == [
            conv1.display_id, conv2.display_id, conv3.display_id
        ]  # fmt: skip
        found = await store.read(conversations.conversation_for_session, verified, conv3.display_id)
        view = await store.read(conversation_views.public_conversation, found, link)
        assert view.id == conv3.display_id and view.inbox_id == sales.id
        with pytest.raises(NotFound):
            await store.read(conversations.conversation_for_session, verified, stranger.display_id)

    async def test_lock_to_single_conversation_returns_the_last(self, store: Store) -> None:
        w = await make_world(store)
        await new_conversation(store, w.inbox, w.session)
        last = (await new_conversation(store, w.inbox, w.session)).conversation
        locked = msgspec.structs.replace(w.inbox, lock_to_single_conversation=True)
        result = await store.write(conversations.create, locked, w.session, {}, link, T0)
        assert result.conversation == last
        assert result.events == []
        other_session, _ = await make_session(store, w.inbox, "fresh")
        fresh = await store.write(conversations.create, locked, other_session, {}, link, T0)
        assert fresh.conversation.display_id == 3 and fresh.events

    async def test_blocked_contact_gets_a_resolved_conversation(self, store: Store) -> None:
        w = await make_world(store)
        await store.write(set_blocked, w.contact.id, True)
        conv = (await new_conversation(store, w.inbox, w.session)).conversation
        assert conv.status == "resolved"
        after = await send(store, conv, w.contact.id)
        assert after.conversation.status == "resolved"  # a blocked contact never reopens
        assert streams_of(after.events, "conversation.status_changed") == []

    # -- messages ----------------------------------------------------------------------------

    async def test_create_incoming(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        result = await send(store, conv, world.contact.id, "hi", now=T0 + 30)
        m = result.message
        assert result.created
        assert (m.content, m.message_type, m.content_type, m.status) == ("hi", 0, "text", "sent")
        assert (m.sender_type, m.sender_id) == ("Contact", world.contact.id)
        assert m.inbox_id == world.inbox.id and m.account_id == world.account.id
        assert result.conversation.last_activity_at == T0 + 30
        assert result.conversation.waiting_since == T0  # kept, not reset
        contact = await store.read(contacts.get_contact, world.contact.id)
        assert contact is not None and contact.last_activity_at == T0 + 30
        with pytest.raises(NotFound):
            await send(store, msgspec.structs.replace(conv, id=999_999), world.contact.id)

    async def test_every_message_moves_activity_forward_only(
        self, store: Store, world: World
    ) -> None:
        """Nodes' clocks differ, so a message stamped earlier may commit later: whoever sent
        it (the customer, an agent, an agent for the contact), activity never goes back."""
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await send(store, conv, world.contact.id, "ahead", now=T0 + 30)
        agent = await store.write(
            prov.create_user, world.account.id, "Ann", "ann@example.com", "agent", "tok-ann", T0
        )

        async def agent_sends(content: str, message_type: int, now: float) -> Conversation:
            new = agent_messages.NewAgentMessage(content=content, message_type=message_type)
            result = await store.write(
                agent_messages.create_message, conv.id, new, agent, 0, link, now
            )
            return result.conversation

        behind = await agent_sends("behind", p.MESSAGE_TYPE_OUTGOING, T0 + 10)
        assert behind.last_activity_at == T0 + 30
        for_contact = await agent_sends("for the contact", p.MESSAGE_TYPE_INCOMING, T0 + 20)
        assert for_contact.last_activity_at == T0 + 30
        contact = await store.read(contacts.get_contact, world.contact.id)
        assert contact is not None and contact.last_activity_at == T0 + 30
        ahead = await agent_sends("ahead", p.MESSAGE_TYPE_OUTGOING, T0 + 40)
        assert ahead.last_activity_at == T0 + 40
        late = await send(store, conv, world.contact.id, "late", now=T0 + 35)
        assert late.conversation.last_activity_at == T0 + 40

    async def test_echo_id_is_idempotent(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        first = await send(store, conv, world.contact.id, "a", echo_id="e-1")
        inbox_stream = events.inbox_stream(world.inbox.id)
        position = await store.read(events.stream_position, inbox_stream)
        second = await send(store, conv, world.contact.id, "b", echo_id="e-1", now=T0 + 1)
        assert first.created and not second.created
        assert second.message == first.message
        assert second.events == []
        assert await store.read(events.stream_position, inbox_stream) == position
        assert len(await store.read(all_messages, conv.id)) == 1
        [event] = [e for e in first.events if e.stream == inbox_stream]
        assert decoded(event).data["echo_id"] == "e-1"
        # another conversation may use the same echo_id
        other = (await new_conversation(store, world.inbox, world.session)).conversation
        third = await send(store, other, world.contact.id, "c", echo_id="e-1")
        assert third.created and third.message.id != first.message.id

    async def test_flood_guard(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        for i in range(3):
            await send(store, conv, world.contact.id, f"m{i}", limit=3, now=T0 + i)
        with pytest.raises(Flooded) as info:
            await send(store, conv, world.contact.id, "too many", limit=3, now=T0 + 10)
        assert info.value.message == "Too many messages"
        assert info.value.retry_after == 50  # the message of T0 leaves the minute at T0+60
        with pytest.raises(Flooded) as info:  # a lowered limit: two must leave
            await send(store, conv, world.contact.id, "too many", limit=2, now=T0 + 10)
        assert info.value.retry_after == 51
        assert len(await store.read(all_messages, conv.id)) == 3
        unguarded = await send(store, conv, world.contact.id, limit=0, now=T0 + 11)
        assert unguarded.created  # limit 0 disables the guard
        # older than 60 s no longer counts: m0 (T0) and m1 (T0+1) drop out at T0+61.5
        ok = await send(store, conv, world.contact.id, "later", limit=3, now=T0 + 61.5)
        assert ok.created
        with pytest.raises(Flooded):
            await send(store, conv, world.contact.id, "no", limit=3, now=T0 + 61.6)

    async def test_new_message_reopens_resolved(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await store.write(conversations.resolve, conv.id, link, T0 + 1)
        result = await send(store, conv, world.contact.id, "back", now=T0 + 2)
        assert result.conversation.status == "open"
        assert [e.name for e in result.events if e.stream.startswith("inbox:")] == [
            "message.created",
            "conversation.status_changed",
        ]
        [changed] = [
            e for e in result.events
            if e.name == "conversation.status_changed" and e.stream.startswith("session:")
        ]  # fmt: skip
        assert decoded(changed).data["status"] == "open"
        again = await send(store, conv, world.contact.id, "more", now=T0 + 3)
        assert streams_of(again.events, "conversation.status_changed") == []

    async def test_list_visible_messages_and_paging(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        visible: list[int] = []
        for i in range(45):
            visible.append(
                (await send(store, conv, world.contact.id, f"m{i}", now=T0 + i)).message.id
            )
            if i % 10 == 0:
                await store.write(
                    messages.insert_message, conv, content="note", message_type=1,
                    private=True, now=T0 + i,
                )  # fmt: skip
                await store.write(
                    messages.insert_message, conv, content="act", message_type=2, now=T0 + i
                )
        assert len(await store.read(all_messages, conv.id)) == 45 + 10

        async def ids(**bounds: int) -> list[int]:
            found = await store.read(message_reads.visible_messages, conv.id, **bounds)
            return [m.id for m in found]

        assert await ids() == visible[25:]
        assert await ids(before=visible[25]) == visible[5:25]
        assert await ids(before=visible[5]) == visible[:5]
        assert await ids(before=visible[0]) == []
        assert await ids(after=visible[0]) == visible[1:21]
        assert await ids(after=visible[20]) == visible[21:41]
        assert await ids(after=visible[40]) == visible[41:]
        assert await ids(after=visible[-1]) == []
        assert await ids(limit=5) == visible[40:]
        everything = await store.read(message_reads.all_visible_messages, conv.id)
        assert [m.id for m in everything] == visible
        view = await store.read(conversation_views.public_conversation, conv, link)
        assert [m.id for m in view.messages] == visible
        n = len(visible)
        within = message_reads.all_visible_messages_within
        assert [m.id for m in await store.read(within, conv.id, n) or []] == visible
        assert await store.read(within, conv.id, n - 1) is None
        bounded = conversation_views.public_conversation_within
        contact = await store.read(contacts.get_contact, world.contact.id)  # as it is now
        assert contact is not None
        assert await store.read(bounded, conv, contact, link, n) == view
        assert await store.read(bounded, conv, contact, link, n - 1) is None

    async def test_attachments(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        files = [
            messages.NewAttachment(
                file_type="image", extension="png", file_name="a.png", content_type="image/png",
                file_size=10, storage_key="k/a", width=3, height=4,
            ),
            messages.NewAttachment(
                file_type="file", extension=None, file_name="b.bin",
                content_type="application/octet-stream", file_size=20, storage_key="k/b",
            ),
        ]  # fmt: skip
        result = await send(store, conv, world.contact.id, None, attachments=files)
        m = result.message
        assert m.content is None
        assert [(a.file_name, a.file_size, a.width) for a in m.attachments] == [
            ("a.png", 10, 3),
            ("b.bin", 20, None),
        ]
        assert all(a.message_id == m.id and a.account_id == world.account.id for a in m.attachments)
        assert await store.read(message_reads.get_message, conv.id, m.id) == m
        assert await store.read(message_reads.get_message, conv.id + 1, m.id) is None
        [listed] = await store.read(message_reads.visible_messages, conv.id)
        assert listed.attachments == m.attachments
        public = await store.read(message_views.render_public, [listed], conv.display_id, link)
        assert [a.data_url for a in public[0].attachments or []] == [link(a) for a in m.attachments]
        [event] = [e for e in result.events if e.stream.startswith("session:")]
        assert [a["id"] for a in decoded(event).data["attachments"]] == [
            a.id for a in m.attachments
        ]

    # -- resolve and CSAT --------------------------------------------------------------------

    async def test_resolve_with_csat(self, store: Store) -> None:
        w = await make_world(
            store, csat_survey_enabled=True, csat_display_type="star", csat_message="Rate us"
        )
        conv = (await new_conversation(store, w.inbox, w.session)).conversation
        await send(store, conv, w.contact.id, now=T0 + 1)
        result = await store.write(conversations.resolve, conv.id, link, T0 + 2)
        view = await store.read(conversation_views.public_conversation, result.conversation, link)
        assert result.conversation.status == "resolved" and view.status == "resolved"
        inbox_s, session_s = events.inbox_stream(w.inbox.id), events.session_stream(w.session.id)
        assert [(e.name, e.stream) for e in result.events] == [
            ("conversation.status_changed", inbox_s),
            ("conversation.status_changed", session_s),
            ("message.created", inbox_s),  # the activity message: agents only
            ("message.created", inbox_s),  # the survey
            ("message.created", session_s),
        ]
        _incoming, activity, survey = await store.read(all_messages, conv.id)
        assert activity.message_type == p.MESSAGE_TYPE_ACTIVITY
        assert activity.content == "Conversation was resolved by Alice"
        assert survey.message_type == p.MESSAGE_TYPE_TEMPLATE
        assert survey.content_type == "input_csat"
        assert survey.content == "Rate us"
        assert survey.content_attributes == {"display_type": "star"}
        assert survey.sender_type is None
        assert [m.id for m in view.messages][-1] == survey.id
        # already resolved: nothing changes
        again = await store.write(conversations.resolve, conv.id, link, T0 + 3)
        assert again.events == [] and again.conversation.status == "resolved"
        with pytest.raises(NotFound):
            await store.write(conversations.resolve, 999_999, link, T0)

    async def test_one_survey_per_conversation_ever(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await send(store, conv, world.contact.id, now=T0)
        await store.write(conversations.resolve, conv.id, link, T0 + 1)
        reopened = await send(store, conv, world.contact.id, now=T0 + 2)
        assert reopened.conversation.status == "open"
        second = await store.write(conversations.resolve, conv.id, link, T0 + 3)
        assert [e.name for e in second.events if e.stream.startswith("inbox:")] == [
            "conversation.status_changed",
            "message.created",
        ]
        found = await store.read(all_messages, conv.id)
        assert [m.content_type for m in found].count("input_csat") == 1
        assert [m.message_type for m in found].count(p.MESSAGE_TYPE_ACTIVITY) == 2

    async def test_no_survey_when_csat_disabled(self, store: Store) -> None:
        w = await make_world(store)
        conv = (await new_conversation(store, w.inbox, w.session)).conversation
        await send(store, conv, w.contact.id)
        await store.write(conversations.resolve, conv.id, link, T0 + 1)
        found = await store.read(all_messages, conv.id)
        assert [m.message_type for m in found] == [p.MESSAGE_TYPE_INCOMING, p.MESSAGE_TYPE_ACTIVITY]
        with pytest.raises(NotFound):
            await store.read(csat.survey, conv.uuid)

    async def test_reply_window_blocks_the_survey(self, store: Store) -> None:
        w = await make_world(store, csat_survey_enabled=True, reply_time_window_hours=1)
        stale = (await new_conversation(store, w.inbox, w.session)).conversation
        await send(store, stale, w.contact.id, now=T0)
        result = await store.write(conversations.resolve, stale.id, link, T0 + 3601)
        found = await store.read(all_messages, stale.id)
        assert "input_csat" not in [m.content_type for m in found]
        assert found[-1].message_type == p.MESSAGE_TYPE_ACTIVITY
        assert found[-1].content == conversations.CSAT_NOT_SENT
        assert all(e.stream.startswith("inbox:") for e in result.events if e.name.startswith("mes"))
        fresh = (await new_conversation(store, w.inbox, w.session)).conversation
        await send(store, fresh, w.contact.id, now=T0)
        await store.write(conversations.resolve, fresh.id, link, T0 + 3600)
        found = await store.read(all_messages, fresh.id)
        assert found[-1].content_type == "input_csat"

    async def _survey(self, store: Store, world: World) -> tuple[Conversation, Message]:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await send(store, conv, world.contact.id)
        await store.write(conversations.resolve, conv.id, link, T0)
        survey = (await store.read(all_messages, conv.id))[-1]
        assert survey.content_type == "input_csat"
        return conv, survey

    async def test_update_submitted_values(self, store: Store, world: World) -> None:
        conv, survey = await self._survey(store, world)
        first = {"csat_survey_response": {"rating": 3, "feedback_message": "meh"}}
        r1 = await store.write(
            messages.update_submitted_values, conv.id, survey.id, first, 14, link, T0 + 10
        )
        assert r1.message.content_attributes == {"display_type": "emoji", "submitted_values": first}
        assert r1.message.updated_at == T0 + 10
        assert sorted(streams_of(r1.events, "message.updated")) == sorted(
            [events.inbox_stream(world.inbox.id), events.session_stream(world.session.id)]
        )
        data = decoded(r1.events[0]).data
        assert data["previous_changes"]["content_attributes"][1]["submitted_values"] == first
        response1 = await store.read(csat.get_response, survey.id)
        assert response1 is not None
        assert (response1.rating, response1.feedback_message) == (3, "meh")
        assert response1.contact_id == world.contact.id and response1.conversation_id == conv.id

        second = [{"csat_survey_response": {"rating": 5}}]
        r2 = await store.write(
            messages.update_submitted_values, conv.id, survey.id, second, 14, link, T0 + 20
        )
        assert r2.message.content_attributes == {
            "display_type": "emoji",
            "submitted_values": second,
        }
        response2 = await store.read(csat.get_response, survey.id)
        assert response2 is not None and response2.id == response1.id
        assert (response2.rating, response2.feedback_message) == (5, None)
        assert response2.created_at == response1.created_at and response2.updated_at == T0 + 20
        assert await store.read(count_rows, "csat_survey_responses") == 1

        unchanged = await store.write(
            messages.update_submitted_values, conv.id, survey.id, None, 14, link, T0 + 30
        )
        assert unchanged.message == r2.message and unchanged.events == []

    async def test_submitted_values_on_any_message(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        m = (await send(store, conv, world.contact.id)).message
        values = [{"name": "email", "title": "Email", "value": "a@b.c"}]
        r = await store.write(
            messages.update_submitted_values, conv.id, m.id, values, 14, link, T0 + 400 * DAY
        )  # no lock for non-CSAT messages
        assert r.message.content_attributes == {"submitted_values": values}
        assert await store.read(count_rows, "csat_survey_responses") == 0
        other = (await new_conversation(store, world.inbox, world.session)).conversation
        with pytest.raises(NotFound):
            await store.write(
                messages.update_submitted_values, other.id, m.id, values, 14, link, T0
            )
        with pytest.raises(NotFound):
            await store.write(messages.update_submitted_values, 999_999, m.id, values, 14, link, T0)

    async def test_csat_lock_after_calendar_days(self, store: Store, world: World) -> None:
        conv, survey = await self._survey(store, world)
        answer = {"csat_survey_response": {"rating": 4}}
        # noon + 14 days + 11h59 is still day 14
        ok = await store.write(
            messages.update_submitted_values, conv.id, survey.id, answer, 14, link,
            survey.created_at + 14 * DAY + 43_000,
        )  # fmt: skip
        assert ok.message.content_attributes["submitted_values"] == answer
        with pytest.raises(Locked) as info:
            await store.write(
                messages.update_submitted_values, conv.id, survey.id, answer, 14, link,
                survey.created_at + 14 * DAY + 43_300,  # past midnight: day 15
            )  # fmt: skip
        assert info.value.error == "You cannot update the CSAT survey after 14 days"
        with pytest.raises(Locked):
            await store.write(
                messages.update_submitted_values, conv.id, survey.id, None, 2, link,
                survey.created_at + 3 * DAY,
            )  # fmt: skip

    async def test_csat_show_and_submit_by_uuid(self, store: Store) -> None:
        w = await make_world(store, csat_survey_enabled=True, csat_message="How did we do?")
        conv, survey = await self._survey(store, w)
        shown = csat_views.csat_survey(await store.read(csat.survey, conv.uuid))
        assert shown.id == survey.id and shown.csat_survey_response is None
        assert shown.display_type == "emoji" and shown.content == "How did we do?"
        assert shown.inbox_name == w.inbox.name and shown.conversation_id == conv.id
        answer = {"csat_survey_response": {"rating": 2, "feedback_message": "slow"}}
        answered, result = await store.write(csat.submit, conv.uuid, answer, 14, link, T0 + 5)
        after = csat_views.csat_survey(answered)
        assert result.message.id == survey.id and result.events
        assert after.csat_survey_response is not None
        assert after.csat_survey_response.rating == 2
        assert after.csat_survey_response.message_id == survey.id
        assert csat_views.csat_survey(await store.read(csat.survey, conv.uuid)) == after
        with pytest.raises(NotFound):
            await store.read(csat.survey, "00000000-0000-4000-8000-000000000000")
        with pytest.raises(NotFound):
            await store.write(csat.submit, "nope", answer, 14, link, T0)

    async def test_update_last_seen(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        incoming = (await send(store, conv, world.contact.id, now=T0)).message

        async def insert(**kw: Any) -> Message:
            return await store.write(messages.insert_message, conv, content="x", **kw)

        reply = await insert(message_type=1, sender_type="User", sender_id=1, now=T0 + 1)
        note = await insert(message_type=1, private=True, now=T0 + 2)
        late = await insert(message_type=1, now=T0 + 100)
        logged = await store.write(conversations.update_last_seen, conv.id, link, T0 + 50)
        status = {m.id: m.status for m in await store.read(all_messages, conv.id)}
        assert status == {incoming.id: "sent", reply.id: "read", note.id: "read", late.id: "sent"}
        assert [e.name for e in logged][-1] == "conversation.read"
        read = [e for e in logged if e.name == "conversation.read"]
        assert [e.stream for e in read] == [events.inbox_stream(world.inbox.id)]  # agents only
        assert decoded(read[0]).data["contact_last_seen_at"] == int(T0 + 50)
        by_stream: dict[str, list[int]] = {}
        for e in logged:
            if e.name == "message.updated":
                by_stream.setdefault(e.stream, []).append(decoded(e).data["id"])
        assert by_stream == {
            events.inbox_stream(world.inbox.id): [reply.id, note.id],
            events.session_stream(world.session.id): [reply.id],  # private: agents only
        }
        assert decoded(logged[0]).data["status"] == "read"
        seen = await store.read(get_conversation_row, conv.id)
        assert seen is not None and seen.contact_last_seen_at == T0 + 50
        again = await store.write(conversations.update_last_seen, conv.id, link, T0 + 60)
        assert [e.name for e in again] == ["conversation.read"]  # nothing left to mark read
        with pytest.raises(NotFound):
            await store.write(conversations.update_last_seen, 999_999, link, T0)

    # -- the event log -----------------------------------------------------------------------

    async def test_offsets_are_contiguous_with_a_stable_epoch(
        self, store: Store, world: World
    ) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await asyncio.gather(*[send(store, conv, world.contact.id, f"m{i}") for i in range(30)])
        await store.write(conversations.resolve, conv.id, link, T0 + 1)
        for stream in (
            events.inbox_stream(world.inbox.id),
            events.session_stream(world.session.id),
        ):
            log = await store.read(events.read_stream, stream)
            assert [e.offset for e in log] == list(range(1, len(log) + 1))
            assert len({e.epoch for e in log}) == 1
            assert await store.read(events.stream_position, stream) == (log[0].epoch, len(log))
            tail = await store.read(events.read_stream, stream, after=len(log) - 7)
            assert tail == log[-7:]
            assert await store.read(events.read_stream, stream, after=len(log)) == []
            assert await store.read(events.read_stream, stream, after=3, limit=2) == log[3:5]
        inbox_log = await store.read(events.read_stream, events.inbox_stream(world.inbox.id))
        session_log = await store.read(events.read_stream, events.session_stream(world.session.id))
        assert inbox_log[0].epoch != session_log[0].epoch
        assert len(inbox_log) == 1 + 30 + 3 and len(session_log) == 1 + 30 + 2
        assert await store.read(events.stream_position, "session:404") is None
        assert await store.read(events.read_stream, "session:404") == []

    async def test_one_payload_for_every_stream(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        result = await send(store, conv, world.contact.id, "same bytes", echo_id="e")
        assert len(result.events) == 2
        payloads = set()
        for logged in result.events:
            [stored] = await store.read(
                events.read_stream, logged.stream, after=logged.offset - 1, limit=1
            )
            assert stored == logged
            payloads.add(stored.payload)
        [payload] = payloads
        event = p.event_decoder.decode(payload)
        assert event.event == "message.created"
        data = msgspec.convert(event.data, p.MessageEventData)
        assert data.id == result.message.id and data.content == "same bytes"
        assert data.conversation_id == conv.display_id and data.echo_id == "e"

    async def test_fan_out(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        inbox_s, session_s = (
            events.inbox_stream(world.inbox.id),
            events.session_stream(world.session.id),
        )
        created = await send(store, conv, world.contact.id)
        assert sorted(streams_of(created.events)) == sorted([inbox_s, session_s])
        for private, message_type in ((True, 1), (False, p.MESSAGE_TYPE_ACTIVITY)):
            m = await store.write(
                messages.insert_message, conv, content="hidden", message_type=message_type,
                private=private, now=T0,
            )  # fmt: skip
            logged = await store.write(notify.emit_message, "message.created", m, conv, link, T0)
            assert streams_of(logged) == [inbox_s]
        outgoing = await store.write(
            messages.insert_message, conv, content="reply", message_type=1, now=T0
        )
        logged = await store.write(notify.emit_message, "message.created", outgoing, conv, link, T0)
        assert sorted(streams_of(logged)) == sorted([inbox_s, session_s])

    async def test_fan_out_to_verified_sessions(self, store: Store, world: World) -> None:
        sales = await make_inbox(store, world.account.id, "Sales")
        v1, contact = await make_session(store, world.inbox, "v1", proved="u")
        v2, _ = await make_session(store, sales, "v2", proved="u")
        u1 = await agent_session(store, world.inbox, contact, "u1")
        assert v1.contact_id == v2.contact_id == u1.contact_id
        s = {x.id: events.session_stream(x.id) for x in (v1, v2, u1)}
        inbox_s = events.inbox_stream(world.inbox.id)

        conv = await new_conversation(store, world.inbox, v1)
        assert sorted(streams_of(conv.events)) == sorted([inbox_s, s[v1.id], s[v2.id]])
        msg = await send(store, conv.conversation, contact.id)
        assert sorted(streams_of(msg.events)) == sorted([inbox_s, s[v1.id], s[v2.id]])
        resolved = await store.write(conversations.resolve, conv.conversation.id, link, T0 + 1)
        assert s[u1.id] not in streams_of(resolved.events)
        assert s[v2.id] in streams_of(resolved.events, "conversation.status_changed")

        unverified_conv = await new_conversation(store, world.inbox, u1)
        assert sorted(streams_of(unverified_conv.events)) == sorted([inbox_s, s[u1.id]])
        msg = await send(store, unverified_conv.conversation, contact.id)
        assert sorted(streams_of(msg.events)) == sorted([inbox_s, s[u1.id]])
        assert await store.read(events.read_stream, s[u1.id]) != []
        assert [e.name for e in await store.read(events.read_stream, s[v2.id])] == [
            "conversation.created",
            "message.created",
            "conversation.status_changed",
            "message.created",  # the survey
        ]

    async def test_a_message_fans_out_as_contact_streams_says(
        self, store: Store, world: World
    ) -> None:
        """A customer's message reads its contact's sessions with the rest of its context:
        its streams must be those ``events.contact_streams`` gives, unverified, verified, and
        once its session moved to another contact (the conversation's contact may then have
        no verified session at all)."""
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        inbox_s = events.inbox_stream(world.inbox.id)

        async def check(echo_id: str) -> list[str]:
            current = await store.read(messages.get_conversation, conv.id)
            expected = await store.write(events.contact_streams, current)
            sent = await send(store, conv, world.contact.id, echo_id, echo_id=echo_id)
            assert streams_of(sent.events) == list(dict.fromkeys([inbox_s, *expected]))
            return expected

        assert await check("unverified") == [events.session_stream(world.session.id)]
        await make_session(store, world.inbox, "o", proved="user-1", name="Owner")
        await store.write(
            contacts.update_contact, world.session.id, contacts.ContactFields(name="Owner B"),
            "user-1", T0 + 5,
        )  # fmt: skip
        assert len(await check("verified")) == 2  # the owner's two verified sessions
        # A verified session whose contact is not the conversation's (not a state the routes
        # make, but the read must not assume otherwise): no contact stream at all.
        await store.write(
            execute, "UPDATE conversations SET contact_id = ? WHERE id = ?", world.contact.id,
            conv.id,
        )  # fmt: skip
        assert await check("elsewhere") == []

    async def test_prune(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        for i in range(5):
            await send(store, conv, world.contact.id, f"old{i}", now=T0 + i)
        for i in range(3):
            await send(store, conv, world.contact.id, f"new{i}", now=T0 + 1000 + i)
        stream = events.session_stream(world.session.id)
        before = await store.read(events.read_stream, stream)
        assert len(before) == 1 + 5 + 3
        dropped = await store.write(events.prune, T0 + 500)
        assert dropped == 2 * (1 + 5)  # inbox and session entries
        after = await store.read(events.read_stream, stream)
        assert after == before[6:]
        assert [e.offset for e in after] == [7, 8, 9]
        assert await store.read(events.read_stream_since, stream, T0 + 1001) == before[7:]
        nxt = await send(store, conv, world.contact.id, "next", now=T0 + 2000)
        assert [e.offset for e in nxt.events if e.stream == stream] == [10]  # never reused
        assert await store.read(count_rows, "events") == 3 + 1

    async def test_streams_appended_since(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await send(store, conv, world.contact.id, "old", now=T0)
        quiet = events.account_stream(world.inbox.account_id)
        await store.write(events.append, "x.quiet", {}, [quiet], T0)
        await send(store, conv, world.contact.id, "new", now=T0 + 10)
        moved = await store.read(events.streams_appended_since, T0 + 10)
        assert sorted(moved) == sorted(
            [events.inbox_stream(world.inbox.id), events.session_stream(world.session.id)]
        )
        assert sorted(await store.read(events.streams_appended_since, T0)) == sorted(
            [*moved, quiet]
        )
        assert await store.read(events.streams_appended_since, T0 + 11) == []

    # -- transactions ------------------------------------------------------------------------

    async def test_concurrent_writes(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        results = await asyncio.gather(
            *[send(store, conv, world.contact.id, f"m{i}", echo_id=f"e{i}") for i in range(200)]
        )
        assert all(r.created for r in results)
        ids = [r.message.id for r in results]
        assert len(set(ids)) == 200
        stored = await store.read(all_messages, conv.id)
        assert sorted(m.id for m in stored) == sorted(ids)
        offsets = [e.offset for r in results for e in r.events if e.stream.startswith("inbox:")]
        assert sorted(offsets) == list(range(2, 202))

    async def test_a_failing_op_affects_only_itself(self, store: Store, world: World) -> None:
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        missing = msgspec.structs.replace(conv, id=999_999)
        jobs = []
        for i in range(10):
            jobs.append(send(store, conv, world.contact.id, f"good{i}"))
            jobs.append(send(store, missing, world.contact.id, "bad"))
            jobs.append(store.write(insert_account_then_fail, f"ghost{i}", T0))
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        good, bad, ghosts = outcomes[0::3], outcomes[1::3], outcomes[2::3]
        assert all(isinstance(r, messages.MessageResult) for r in good)
        assert all(isinstance(r, NotFound) for r in bad)
        assert all(isinstance(r, InvalidAttribute) for r in ghosts)
        assert len(await store.read(all_messages, conv.id)) == 10
        for i in range(10):
            assert await store.read(prov.find_account_by_name, f"ghost{i}") is None
        log = await store.read(events.read_stream, events.inbox_stream(world.inbox.id))
        assert [e.offset for e in log] == list(range(1, 12))

    async def test_reads_fail_cleanly(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.read(conversations.conversation_for_session, ghost_session(), 1)
        assert await store.read(prov.get_account, 1) is None  # the reader still works

    async def test_close_finishes_queued_writes(self, make_store: StoreFactory) -> None:
        store = make_store()
        await store.start()
        w = await make_world(store)
        conv = (await new_conversation(store, w.inbox, w.session)).conversation
        pending = [
            asyncio.ensure_future(send(store, conv, w.contact.id, f"m{i}")) for i in range(20)
        ]
        await asyncio.sleep(0)  # every write is queued
        await store.close()
        results = await asyncio.gather(*pending)
        reopened = make_store()
        await reopened.start()
        try:
            stored = await reopened.read(all_messages, conv.id)
            assert sorted(m.id for m in stored) == sorted(r.message.id for r in results)
        finally:
            await reopened.close()

    async def test_acknowledged_writes_survive_reopen(self, make_store: StoreFactory) -> None:
        store = make_store()
        await store.start()
        w = await make_world(store, csat_survey_enabled=True)
        conv = (await new_conversation(store, w.inbox, w.session)).conversation
        sent = await asyncio.gather(
            *[send(store, conv, w.contact.id, f"m{i}", now=T0 + i) for i in range(50)]
        )
        resolved = await store.write(conversations.resolve, conv.id, link, T0 + 100)
        inbox_log = await store.read(events.read_stream, events.inbox_stream(w.inbox.id))
        await store.close()

        reopened = make_store()
        await reopened.start()
        try:
            assert await reopened.read(prov.get_inbox_by_identifier, w.inbox.identifier) == w.inbox
            found = await reopened.read(contacts.get_session, w.inbox.id, "device-1")
            assert found is not None and found[0] == w.session
            assert found[1].last_activity_at == T0 + 49
            assert await reopened.read(get_conversation_row, conv.id) == resolved.conversation
            stored = await reopened.read(all_messages, conv.id)
            assert {r.message.id for r in sent} <= {m.id for m in stored}
            assert len(stored) == 50 + 2
            again = await reopened.read(events.read_stream, events.inbox_stream(w.inbox.id))
            assert again == inbox_log
            # the log continues where it stopped, in the same epoch
            more = await send(reopened, conv, w.contact.id, "after reopen", now=T0 + 200)
            [entry] = [
                e for e in more.events
                if e.stream.startswith("inbox:") and e.name == "message.created"
            ]  # fmt: skip
            assert (entry.epoch, entry.offset) == (inbox_log[-1].epoch, inbox_log[-1].offset + 1)
        finally:
            await reopened.close()
