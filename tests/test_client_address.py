"""Whose address a request counts against, on a real ``inboxgate serve``: ``X-Forwarded-For``
is believed only from ``INBOXGATE_FORWARDED_ALLOW_IPS`` (uvicorn's own default believed any
loopback peer), and websocket upgrades on ``/cable`` have a per-IP limit of their own
(``INBOXGATE_CABLE_CONNECTS_PER_IP``), refused with a ``429`` before the upgrade."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.server_helpers import GatewayProcess, gateway_server

CUSTOMER = "203.0.113.7"
OTHER = "203.0.113.8"


# Probes (/health, /ready) are never rate limited; an API path is.
LIMITED = "/public/api/v1/inboxes/no-such-inbox"


def until_limited(server: GatewayProcess, headers: dict[str, str]) -> tuple[int, httpx.Response]:
    """GET an API path until refused: (how many were served, the refusal)."""
    with httpx.Client(timeout=5) as client:
        for served in range(50):
            r = client.get(server.url(LIMITED), headers=headers)
            if r.status_code == 429:
                return served, r
            assert r.status_code == 404, r.text
    raise AssertionError("never rate limited")


def test_forwarded_for_from_a_loopback_peer_is_not_believed_by_default(tmp_path: Path) -> None:
    with gateway_server(tmp_path, INBOXGATE_RATE_LIMIT_PER_IP="5") as server:
        served, refused = until_limited(server, {"X-Forwarded-For": CUSTOMER})
        assert served <= 5  # one bucket for 127.0.0.1, whatever the header says
        assert refused.status_code == 429
        assert refused.json()["description"].endswith("exceeded for 127.0.0.1")
        # another forwarded address does not buy a fresh bucket either
        r = httpx.get(server.url(LIMITED), headers={"X-Forwarded-For": OTHER}, timeout=5)
        assert r.status_code == 429


def test_forwarded_for_is_believed_from_a_configured_proxy(tmp_path: Path) -> None:
    env = {"INBOXGATE_RATE_LIMIT_PER_IP": "3", "INBOXGATE_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with gateway_server(tmp_path, **env) as server:
        served, refused = until_limited(server, {"X-Forwarded-For": CUSTOMER})
        assert served == 3
        assert refused.json()["description"].endswith(f"exceeded for {CUSTOMER}")
        r = httpx.get(server.url(LIMITED), headers={"X-Forwarded-For": OTHER}, timeout=5)
        assert r.status_code == 404  # each client behind the proxy has its own bucket


def refused_upgrade(server: GatewayProcess, forwarded_for: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(
            server.ws_url(), open_timeout=5, additional_headers={"X-Forwarded-For": forwarded_for}
        )
    return refused.value


def test_websocket_upgrades_are_rate_limited_per_ip(tmp_path: Path) -> None:
    env = {"INBOXGATE_CABLE_CONNECTS_PER_IP": "3", "INBOXGATE_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with gateway_server(tmp_path, **env) as server:
        for _ in range(3):
            headers = {"X-Forwarded-For": CUSTOMER}
            with ws_connect(server.ws_url(), open_timeout=5, additional_headers=headers) as ws:
                assert '"welcome"' in str(ws.recv(timeout=5))

        response = refused_upgrade(server, CUSTOMER).response
        assert response.status_code == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 120
        assert response.headers["Content-Type"].startswith("application/json")
        body = msgspec.json.decode(response.body)
        assert body["status"] == 429
        assert body["error"] == "Too Many Requests"
        assert "3 websocket connections per 60 s" in body["description"]
        assert body["description"].endswith(f"exceeded for {CUSTOMER}")

        # another client is not affected, nor is plain HTTP from the limited one
        with ws_connect(
            server.ws_url(), open_timeout=5, additional_headers={"X-Forwarded-For": OTHER}
        ) as ws:
            ws.recv(timeout=5)
        r = httpx.get(server.url("/health"), headers={"X-Forwarded-For": CUSTOMER}, timeout=5)
        assert r.status_code == 200


def test_safelisted_addresses_are_not_limited_on_upgrades(tmp_path: Path) -> None:
    env = {"INBOXGATE_CABLE_CONNECTS_PER_IP": "1", "INBOXGATE_RATE_LIMIT_SAFELIST": "127.0.0.1"}
    with gateway_server(tmp_path, **env) as server:
        for _ in range(3):
            with ws_connect(server.ws_url(), open_timeout=5) as ws:
                ws.recv(timeout=5)
