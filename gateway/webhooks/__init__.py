"""Signed webhooks: payloads (``payloads``), signing and backoff (``signing``), the SSRF guard
(``guard``) and the delivery worker (``worker``). The durable outbox itself is a set of store
operations (``gateway.domain.webhooks``), written in the transaction that logs each event.

What the package raises (its one root, from ``guard``)::

    UrlRefused              not http(s), or an address a webhook may not reach
    └── UrlUnresolvable     the host has no address now (a delivery retries; a create accepts it)
"""
