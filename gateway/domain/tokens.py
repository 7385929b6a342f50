"""Random tokens in the formats Chatwoot clients expect."""

from __future__ import annotations

import secrets
import uuid

# Rails has_secure_token alphabet: base58 (no 0, O, I, l).
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

_ADJECTIVES = (
    "autumn hidden bitter misty silent empty dry dark summer icy delicate quiet white cool "
    "spring winter patient twilight dawn crimson wispy weathered blue billowing broken cold "
    "damp falling frosty green long late lingering bold little morning muddy old red rough "
    "still small sparkling shy wandering withered wild black young holy solitary fragrant "
    "aged snowy proud floral restless divine polished ancient purple lively nameless"
).split()
_NOUNS = (
    "waterfall river breeze moon rain wind sea morning snow lake sunset pine shadow leaf dawn "
    "glitter forest hill cloud meadow sun glade bird brook butterfly bush dew dust field fire "
    "flower firefly feather grass haze mountain night pond darkness snowflake silence sound "
    "sky shape surf thunder violet water wildflower wave resonance dream cherry tree fog "
    "frost voice paper frog smoke star"
).split()


def secure_token(length: int = 24) -> str:
    """24 random base58 characters, as Rails' ``has_secure_token`` (~140 bits)."""
    return "".join(secrets.choice(BASE58) for _ in range(length))


def uuid4() -> str:
    return str(uuid.uuid4())


def haiku_name() -> str:
    """A default contact name like ``delicate-haze-847`` (Chatwoot uses Haikunator)."""
    return (
        f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(9000) + 1000}"
    )
