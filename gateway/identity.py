"""HMAC identity validation (reference §4.3), done right.

``identifier_hash`` is the lowercase hex HMAC-SHA256 of ``identifier`` keyed with the inbox's
``hmac_token``. Unlike Chatwoot, the compare is constant-time and a failure is a 401, not a 500.
The hash is computed in one place, the SDK's :func:`client_sdk.http_core.identifier_hash`, which
customers' backends call: what the gateway expects is what the SDK sends, by construction.
"""

from __future__ import annotations

import hmac

from client_sdk.http_core import identifier_hash

from .errors import HmacFailed

__all__ = ["identifier_hash", "verify"]


def verify(
    hmac_token: str, identifier: str | None, given_hash: str | None, *, mandatory: bool
) -> bool:
    """Check a request's identity claim.

    Returns False when there is nothing to check (no hash and HMAC not mandatory), True when
    the hash is valid. Raises :class:`HmacFailed` when a hash is required or given but wrong.
    """
    if not given_hash:
        if mandatory:
            raise HmacFailed("HMAC failed: identifier_hash is required for this inbox")
        return False
    expected = identifier_hash(hmac_token, identifier or "")
    # compare_digest on bytes: constant-time whatever the input, and accepts non-ASCII
    if not hmac.compare_digest(expected.encode(), given_hash.strip().lower().encode()):
        raise HmacFailed()
    return True
