"""The domain: Chatwoot's rules over records and events, with no HTTP and no rendering of
responses. Its operations are sans-I/O generators (``gateway.store.sql``) that any store engine
runs in one transaction; a service composes one with the view that renders its result
(``gateway.views``). What they refuse is a :class:`~gateway.domain.errors.DomainError`, which
each API answers in its own words (``gateway.routes.errors``)::

    DomainError
    ├── NotFound            the record named does not exist (or is not the caller's to see)
    ├── InvalidAttribute    a field breaks a model rule
    ├── Flooded             too many messages in a conversation this minute
    ├── Locked              the record can no longer change (the CSAT lock)
    ├── LimitReached        the account's plan allows no more of these
    └── Duplicate           another record already holds what this one asks for

The customer's side: ``contacts``, ``conversations``, ``messages``, ``incoming`` (the hot
path), ``csat``. The agent's side: ``agent_*``, ``assignees``, ``teams``. Provisioning:
``provisioning``, ``platform``, ``agent_bots``, ``highlevel``. What every change leaves
behind: ``events`` (the event log), ``notify`` (which events and webhooks a change makes),
``webhooks`` and ``outbox`` (deliveries). Shared: ``errors``, ``models``, ``validation``,
``message_reads``, ``tokens``, ``grants``, ``instance_secrets``.
"""
