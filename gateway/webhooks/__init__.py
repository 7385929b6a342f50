"""Signed webhooks: payloads (``payloads``), signing and backoff (``signing``), the SSRF guard
(``guard``) and the delivery worker (``worker``). The durable outbox itself is a set of store
operations (``gateway.domain.webhooks``), written in the transaction that logs each event.
"""
