"""HMAC identity (reference §4.3): the hash Chatwoot clients compute, checked strictly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import HmacFailed
from gateway.identity import identifier_hash, verify

fast = settings(max_examples=60, deadline=None)
TEXT = st.text(max_size=40)


@fast
@given(token=TEXT, identifier=TEXT)
def test_identifier_hash_is_lowercase_hex_sha256(token: str, identifier: str) -> None:
    digest = identifier_hash(token, identifier)
    assert len(digest) == 64 and digest == digest.lower()
    int(digest, 16)


def test_known_vector() -> None:
    # RFC 4231 test case 2 ("Jefe" / "what do ya want for nothing?")
    assert identifier_hash("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@fast
@given(token=TEXT, identifier=TEXT, mandatory=st.booleans(), upper=st.booleans())
def test_verify_accepts_the_right_hash(
    token: str, identifier: str, mandatory: bool, upper: bool
) -> None:
    digest = identifier_hash(token, identifier)
    given_hash = digest.upper() if upper else digest
    assert verify(token, identifier, given_hash, mandatory=mandatory) is True


@fast
@given(token=TEXT, identifier=TEXT, given_hash=st.text(min_size=1, max_size=80))
def test_verify_rejects_any_other_string(token: str, identifier: str, given_hash: str) -> None:
    if given_hash.strip().lower() == identifier_hash(token, identifier):
        return  # hypothesis will not find this, but a correct answer is not a counterexample
    for mandatory in (False, True):
        with pytest.raises(HmacFailed):
            verify(token, identifier, given_hash, mandatory=mandatory)


@fast
@given(token=TEXT, identifier=TEXT, position=st.integers(0, 63))
def test_verify_rejects_a_one_character_change(token: str, identifier: str, position: int) -> None:
    digest = identifier_hash(token, identifier)
    flipped = "0" if digest[position] != "0" else "1"
    with pytest.raises(HmacFailed):
        verify(
            token, identifier, digest[:position] + flipped + digest[position + 1 :], mandatory=False
        )
    with pytest.raises(HmacFailed):
        verify(token, identifier, digest[:-1], mandatory=False)


@fast
@given(token=TEXT, other=TEXT, identifier=TEXT)
def test_hash_from_another_token_fails(token: str, other: str, identifier: str) -> None:
    if other == token:
        return
    with pytest.raises(HmacFailed):
        verify(token, identifier, identifier_hash(other, identifier), mandatory=False)


@fast
@given(token=TEXT, identifier=TEXT, other=TEXT)
def test_hash_of_another_identifier_fails(token: str, identifier: str, other: str) -> None:
    if other == identifier:
        return
    with pytest.raises(HmacFailed):
        verify(token, identifier, identifier_hash(token, other), mandatory=True)


@pytest.mark.parametrize("missing", [None, ""])
def test_mandatory_without_a_hash_raises(missing: str | None) -> None:
    with pytest.raises(HmacFailed, match="required"):
        verify("token", "user-1", missing, mandatory=True)


@pytest.mark.parametrize("missing", [None, ""])
def test_optional_without_a_hash_is_not_verified(missing: str | None) -> None:
    assert verify("token", "user-1", missing, mandatory=False) is False
    assert verify("token", None, missing, mandatory=False) is False


def test_missing_identifier_is_the_empty_string() -> None:
    assert verify("token", None, identifier_hash("token", ""), mandatory=True) is True
    with pytest.raises(HmacFailed):
        verify("token", None, identifier_hash("token", "user-1"), mandatory=False)


def test_failure_message_is_chatwoots() -> None:
    with pytest.raises(HmacFailed) as info:
        verify("token", "user-1", "deadbeef", mandatory=False)
    assert info.value.description == "HMAC failed: Invalid Identifier Hash Provided"
    assert info.value.status == 401
