"""The domain: Chatwoot's rules over records and events, with no HTTP and no rendering.
Its operations are sans-I/O generators (``gateway.store.sql``) that any store engine runs;
what they refuse is a :class:`gateway.domain.errors.DomainError`."""
