"""Who is online, per account: agents and contacts seen within the presence window.

Ephemeral by design (Chatwoot keeps it in a Redis sorted set with a 20 s window): a subscribe
or an ``update_presence`` marks the subscriber seen now; nothing is logged. The methods are
async because the shared implementation (:mod:`gateway.realtime.presence_redis`) asks Redis.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from client_sdk import protocol as p


class Presence(ABC):
    window: float

    @abstractmethod
    async def seen_user(self, account_id: int, user_id: int, availability: str) -> None: ...

    @abstractmethod
    async def seen_contact(self, account_id: int, contact_id: int) -> None: ...

    @abstractmethod
    async def for_contact(self, account_id: int) -> p.PresenceEventData:
        """Who a contact sees: the account's agents online."""

    @abstractmethod
    async def for_agent(self, account_id: int) -> p.PresenceEventData:
        """Who an agent sees: the account's agents and contacts online."""


class MemoryPresence(Presence):
    """In-process presence: one node."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        # account -> id -> (last seen, availability)
        self._users: dict[int, dict[int, tuple[float, str]]] = {}
        self._contacts: dict[int, dict[int, float]] = {}

    async def seen_user(self, account_id: int, user_id: int, availability: str) -> None:
        self._users.setdefault(account_id, {})[user_id] = (self._clock(), availability)

    async def seen_contact(self, account_id: int, contact_id: int) -> None:
        self._contacts.setdefault(account_id, {})[contact_id] = self._clock()

    def _online_users(self, account_id: int, cutoff: float) -> dict[str, str]:
        users = self._users.get(account_id, {})
        for uid in [u for u, (seen, _a) in users.items() if seen < cutoff]:
            del users[uid]
        return {str(uid): availability for uid, (_seen, availability) in sorted(users.items())}

    def _online_contacts(self, account_id: int, cutoff: float) -> dict[str, str]:
        contacts = self._contacts.get(account_id, {})
        for cid in [c for c, seen in contacts.items() if seen < cutoff]:
            del contacts[cid]
        return {str(cid): "online" for cid in sorted(contacts)}

    async def for_contact(self, account_id: int) -> p.PresenceEventData:
        cutoff = self._clock() - self.window
        return p.PresenceEventData(
            account_id=account_id, users=self._online_users(account_id, cutoff)
        )

    async def for_agent(self, account_id: int) -> p.PresenceEventData:
        cutoff = self._clock() - self.window
        return p.PresenceEventData(
            account_id=account_id,
            users=self._online_users(account_id, cutoff),
            contacts=self._online_contacts(account_id, cutoff),
        )
