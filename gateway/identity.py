"""HMAC identity validation (reference §4.3), done right.

``identifier_hash`` is the lowercase hex HMAC-SHA256 of ``identifier`` keyed with the inbox's
``hmac_token``. Unlike Chatwoot, the compare is constant-time and a failure is a 401, not a 500.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import HmacFailed


def identifier_hash(hmac_token: str, identifier: str) -> str:
    """The hash a customer's backend computes to prove it vouches for ``identifier``."""
    return hmac.new(hmac_token.encode(), identifier.encode(), hashlib.sha256).hexdigest()


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
