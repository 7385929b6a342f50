"""Presence shared by every node, in Redis: per account, a sorted set of who was seen when.

Keys (the account in a hash tag, so one account's keys share a Redis Cluster slot)::

    {prefix}:presence:{account}:users          zset  user id -> last seen (unix seconds)
    {prefix}:presence:{account}:availability   hash  user id -> availability
    {prefix}:presence:{account}:contacts       zset  contact id -> last seen

A read trims what fell out of the window (and its availability) in the same script, so the
keys stay as small as the set of people online; idle accounts expire. Times are wall-clock
seconds because nodes share them. Presence is ephemeral: when Redis fails, it reads as empty
and a mark is skipped, with a warning, rather than failing a subscription.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from client_sdk import protocol as p

from .presence import Presence

log = logging.getLogger("inboxgate.cable")

# KEYS: users, availability, contacts. ARGV: cutoff, "1" to list contacts too.
# Returns {user ids, their availabilities, contact ids}. ZREM/HDEL go in chunks: Lua's unpack
# has a stack limit.
_READ = """
local stale = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE')
for i = 1, #stale, 1000 do
  local chunk = {unpack(stale, i, math.min(i + 999, #stale))}
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[2], unpack(chunk))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[1])
local users = redis.call('ZRANGE', KEYS[1], ARGV[1], '+inf', 'BYSCORE')
local availability = {}
if #users > 0 then availability = redis.call('HMGET', KEYS[2], unpack(users)) end
local contacts = {}
if ARGV[2] == '1' then contacts = redis.call('ZRANGE', KEYS[3], ARGV[1], '+inf', 'BYSCORE') end
return {users, availability, contacts}
"""


class RedisPresence(Presence):
    def __init__(
        self,
        client: aioredis.Redis,
        window: float,
        *,
        prefix: str = "inboxgate",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._read = client.register_script(_READ)
        # Keys of an account nobody marks any more vanish after a few windows.
        self._ttl_ms = int(max(window, 1.0) * 3000)

    def _keys(self, account_id: int) -> tuple[str, str, str]:
        base = f"{self._prefix}:presence:{{{account_id}}}"
        return f"{base}:users", f"{base}:availability", f"{base}:contacts"

    async def seen_user(self, account_id: int, user_id: int, availability: str) -> None:
        users, avail, _contacts = self._keys(account_id)
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(users, {str(user_id): self._clock()})
        pipe.hset(avail, str(user_id), availability)
        pipe.pexpire(users, self._ttl_ms)
        pipe.pexpire(avail, self._ttl_ms)
        await self._run(pipe)

    async def seen_contact(self, account_id: int, contact_id: int) -> None:
        _users, _avail, contacts = self._keys(account_id)
        pipe = self._client.pipeline(transaction=False)
        pipe.zadd(contacts, {str(contact_id): self._clock()})
        pipe.pexpire(contacts, self._ttl_ms)
        await self._run(pipe)

    async def for_contact(self, account_id: int) -> p.PresenceEventData:
        users, _contacts = await self._online(account_id, with_contacts=False)
        return p.PresenceEventData(account_id=account_id, users=users)

    async def for_agent(self, account_id: int) -> p.PresenceEventData:
        users, contacts = await self._online(account_id, with_contacts=True)
        return p.PresenceEventData(account_id=account_id, users=users, contacts=contacts)

    async def _run(self, pipe: aioredis.client.Pipeline) -> None:
        try:
            await pipe.execute()
        except RedisError as exc:
            log.warning("presence not recorded, Redis failed: %s", exc)

    async def _online(
        self, account_id: int, *, with_contacts: bool
    ) -> tuple[dict[str, str], dict[str, str]]:
        cutoff = repr(self._clock() - self.window)
        try:
            found = await self._read(
                keys=list(self._keys(account_id)), args=[cutoff, "1" if with_contacts else "0"]
            )
        except RedisError as exc:
            log.warning("presence unknown, Redis failed: %s", exc)
            return {}, {}
        user_ids, availability, contact_ids = found
        users = {
            int(uid): (a.decode() if a is not None else "online")
            for uid, a in zip(user_ids, availability, strict=True)
        }
        return (
            {str(uid): users[uid] for uid in sorted(users)},
            {str(cid): "online" for cid in sorted(int(c) for c in contact_ids)},
        )
