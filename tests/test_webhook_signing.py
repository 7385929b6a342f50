"""Webhook signing (Chatwoot 4.11+ headers), the retry schedule, the SSRF guard, settings."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.backoff import backoff
from gateway.settings import Settings, SettingsError
from gateway.webhooks import guard, signing

pytestmark = pytest.mark.anyio


# -- signing -----------------------------------------------------------------------------------


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    body = b'{"event":"message_created","id":1}'
    expected = hmac.new(b"s3cret", b"1767268800." + body, hashlib.sha256).hexdigest()
    assert signing.signature("s3cret", 1767268800, body) == "sha256=" + expected


def test_headers_of_one_attempt() -> None:
    body = b"{}"
    headers = signing.headers("k", "delivery-1", 1700000000, body)
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["X-Chatwoot-Timestamp"] == "1700000000"
    assert headers["X-Chatwoot-Delivery"] == "delivery-1"
    assert headers["X-Chatwoot-Signature"] == signing.signature("k", 1700000000, body)


def test_verify_accepts_only_a_recent_matching_signature() -> None:
    body = b'{"a":1}'
    sig = signing.signature("k", 1000, body)
    assert signing.verify("k", body, sig, "1000", now=1000)
    assert signing.verify("k", body, sig, "1000", now=1299)
    assert not signing.verify("k", body, sig, "1000", now=1301)  # too old: a replay
    assert not signing.verify("other", body, sig, "1000", now=1000)
    assert not signing.verify("k", body + b" ", sig, "1000", now=1000)
    assert not signing.verify("k", body, sig, "1001", now=1000)  # timestamp is signed too
    assert not signing.verify("k", body, None, "1000", now=1000)
    assert not signing.verify("k", body, sig, "soon", now=1000)
    assert not signing.verify("k", body, sig.removeprefix("sha256="), "1000", now=1000)


@given(st.text(min_size=1), st.binary(), st.integers(min_value=0, max_value=2**40))
def test_verify_round_trip(secret: str, body: bytes, timestamp: int) -> None:
    headers = signing.headers(secret, "d", timestamp, body)
    assert signing.verify(
        secret, body, headers["X-Chatwoot-Signature"], headers["X-Chatwoot-Timestamp"],
        now=timestamp,
    )  # fmt: skip


# -- backoff -----------------------------------------------------------------------------------


def test_backoff_doubles_and_is_capped() -> None:
    full = [backoff(n, 2.0, 60.0, rand=lambda: 1.0) for n in range(7)]
    assert full == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    half = [backoff(n, 2.0, 60.0, rand=lambda: 0.0) for n in range(3)]
    assert half == [1.0, 2.0, 4.0]
    assert backoff(-1, 2.0, 60.0) == 0.0
    assert backoff(10_000, 2.0, 60.0, rand=lambda: 1.0) == 60.0  # no overflow
    assert backoff(3, 0.005, 2.0, least=0.0, rand=lambda: 0.0) == 0.0  # PostgreSQL's re-runs


@given(
    st.integers(min_value=0, max_value=100),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_backoff_jitter_stays_between_least_and_all(attempt: int, r: float, least: float) -> None:
    delay = backoff(attempt, 0.5, 900.0, least=least, rand=lambda: r)
    ceiling = min(900.0, 0.5 * 2.0**attempt)
    assert ceiling * least <= delay <= ceiling


# -- the SSRF guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
        "::ffff:10.0.0.1", "2002:7f00:1::1", "::",
    ],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not guard.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert guard.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "not a url", "http://", "https:///path", "http://exa mple.com/",
     "http://example.com:99999/", "javascript:alert(1)", "http://e.com/" + "a" * 2100],
)  # fmt: skip
async def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(guard.UrlRefused):
        await guard.check(url, allow_private=True)


async def test_private_literals_refused_unless_allowed() -> None:
    for url in ("http://127.0.0.1:8080/hook", "http://[::1]/", "http://169.254.169.254/latest"):
        with pytest.raises(guard.UrlRefused, match="not a public address"):
            await guard.check(url, allow_private=False)
        assert (await guard.check(url, allow_private=True)).url == url


async def test_names_are_resolved_and_pinned() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example", 443)
        return ["93.184.216.34", "2606:4700:4700::1111"]

    target = await guard.check(
        "https://hooks.example/cw?x=1", allow_private=False, resolver=resolver
    )
    assert target.url == "https://93.184.216.34/cw?x=1"
    assert target.host_header == "hooks.example"
    assert target.sni_hostname == "hooks.example"

    async def v6(host: str, port: int) -> list[str]:
        assert port == 8080
        return ["2606:4700:4700::1111"]

    target = await guard.check("http://u:p@hooks.example:8080/h", allow_private=False, resolver=v6)
    assert target.url == "http://u:p@[2606:4700:4700::1111]:8080/h"
    assert (target.host_header, target.sni_hostname) == ("hooks.example:8080", None)


async def test_internationalised_names_keep_an_ascii_host_header() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    target = await guard.check("https://bücher.example:8443/h", allow_private=False,
                               resolver=resolver)  # fmt: skip
    assert target.host_header == "xn--bcher-kva.example:8443"
    assert target.url == "https://93.184.216.34:8443/h"


async def test_a_name_with_any_private_address_is_refused() -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(guard.UrlRefused, match="non-public"):
        await guard.check("https://evil.example/", allow_private=False, resolver=rebinding)


async def test_localhost_is_refused_through_real_resolution() -> None:
    with pytest.raises(guard.UrlRefused):
        await guard.check("http://localhost:9/hook", allow_private=False)


async def test_unresolvable_names() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        raise guard.UrlUnresolvable(f"cannot resolve {host}")

    with pytest.raises(guard.UrlUnresolvable):
        await guard.check("https://gone.example/", allow_private=False, resolver=nothing)


# -- settings ----------------------------------------------------------------------------------


def test_webhook_settings(tmp_path: Path) -> None:
    base = {"INBOXGATE_DATA_DIR": str(tmp_path)}
    s = Settings.from_env(base)
    assert (s.webhook_max_attempts, s.webhook_backoff_base, s.webhook_timeout) == (12, 2.0, 5.0)
    assert s.webhook_allow_private is False
    s = Settings.from_env(
        {
            **base,
            "INBOXGATE_WEBHOOK_MAX_ATTEMPTS": "3",
            "INBOXGATE_WEBHOOK_BACKOFF_BASE": "0.25",
            "INBOXGATE_WEBHOOK_BACKOFF_MAX": "10",
            "INBOXGATE_WEBHOOK_TIMEOUT": "1.5",
            "INBOXGATE_WEBHOOK_CONCURRENCY": "2",
            "INBOXGATE_WEBHOOK_ALLOW_PRIVATE": "1",
        }
    )
    assert (s.webhook_max_attempts, s.webhook_backoff_base, s.webhook_backoff_max) == (3, 0.25, 10)
    assert (s.webhook_timeout, s.webhook_concurrency, s.webhook_allow_private) == (1.5, 2, True)
    for name, value in (
        ("WEBHOOK_BACKOFF_BASE", "fast"), ("WEBHOOK_BACKOFF_BASE", "-1"),
        ("WEBHOOK_TIMEOUT", "nan"), ("WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("WEBHOOK_MAX_ATTEMPTS", "1.5"),
    ):  # fmt: skip
        with pytest.raises(SettingsError, match="INBOXGATE_" + name):
            Settings.from_env({**base, "INBOXGATE_" + name: value})
