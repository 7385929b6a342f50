"""Signing deliveries as Chatwoot 4.11+ does, and the retry schedule. Pure functions.

``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``, with the
same ``<timestamp>`` in ``X-Chatwoot-Timestamp`` (Unix seconds, the time of this attempt) and
``X-Chatwoot-Delivery``, the delivery's id, unchanged across its retries.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
USER_AGENT = "inboxgate-webhooks"
# Receivers should refuse older timestamps (reference §9.3: "~5 min").
DEFAULT_TOLERANCE = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<lowercase hex>`` of ``"<timestamp>.<body>"`` under ``secret``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        DELIVERY_HEADER: delivery_id,
    }


def verify(
    secret: str,
    body: bytes,
    signature_header: str | None,
    timestamp_header: str | None,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """What a receiver checks: a well-formed, recent timestamp and a matching signature
    (compared in constant time)."""
    if not signature_header or not timestamp_header:
        return False
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header.strip())
