"""The gateway under uvicorn on PostgreSQL: the whole customer flow of ``test_server_flow``
against a ``postgresql://`` database, ``inboxgate migrate`` on it, and PostgreSQL going away
for a while (clean 503s at once, no hang; nothing acknowledged lost; service resumes)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import test_server_flow as flow
from tests.postgres_helpers import ThreadedProxy, fresh_database_sync
from tests.server_helpers import CLI, GatewayProcess, gateway_server, server_env

pytestmark = pytest.mark.slow

# The customer flow, collected again here with ``server`` below: a gateway on PostgreSQL.
inboxes = flow.inboxes
client = flow.client
test_get_inbox = flow.test_get_inbox
test_contact_without_hmac = flow.test_contact_without_hmac
test_hmac_mandatory_inbox = flow.test_hmac_mandatory_inbox
test_conversation_and_messages = flow.test_conversation_and_messages
test_resolve_and_csat = flow.test_resolve_and_csat
test_unknown_contact_and_conversation_are_404 = flow.test_unknown_contact_and_conversation_are_404


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with fresh_database_sync() as url:
        root = tmp_path_factory.mktemp("pgflow")
        with gateway_server(root, INBOXGATE_DATABASE_URL=url) as started:
            yield started


def test_migrate_command_on_postgres(tmp_path: Path) -> None:
    with fresh_database_sync() as url:
        env = server_env(tmp_path, INBOXGATE_DATABASE_URL=url)
        first = subprocess.run([*CLI, "migrate"], env=env, capture_output=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert b"applied migrations: 1, 2, 3, 4, 5, 6, 7" in first.stdout
        second = subprocess.run([*CLI, "migrate"], env=env, capture_output=True, timeout=60)
        assert second.returncode == 0 and b"up to date" in second.stdout


def post(c: httpx.Client, url: str, body: dict[str, Any]) -> tuple[int, float, Any]:
    started = time.monotonic()
    r = c.post(url, json=body)
    return r.status_code, time.monotonic() - started, r.json()


def test_postgres_outage_gives_503s_then_recovers(tmp_path: Path) -> None:
    threaded = ThreadedProxy()
    with fresh_database_sync() as url, threaded as proxy:
        server = GatewayProcess(tmp_path, INBOXGATE_DATABASE_URL=proxy.url(url))
        with server, httpx.Client(base_url=server.base_url, timeout=30.0) as c:
            inbox = server.provision_inbox()
            base = f"/public/api/v1/inboxes/{inbox['identifier']}"
            contact = c.post(f"{base}/contacts", json={}).json()
            conv_api = f"{base}/contacts/{contact['source_id']}/conversations"
            display_id = c.post(conv_api, json={}).json()["id"]
            messages = f"{conv_api}/{display_id}/messages"
            acked = [post(c, messages, {"content": f"m{i}", "echo_id": f"e{i}"}) for i in range(5)]
            assert all(status == 200 for status, _, _ in acked)

            threaded.call("cut")  # PostgreSQL is gone: connections dropped, new ones refused
            time.sleep(0.2)
            for i in range(5):
                status, took, body = post(c, messages, {"content": f"down{i}", "echo_id": f"d{i}"})
                assert status == 503 and body["error"] == "Service Unavailable"
                assert took < 2.0
            assert c.get(messages).status_code == 503

            threaded.call("restore")
            deadline = time.monotonic() + 15
            while (status := post(c, messages, {"content": "back", "echo_id": "back"})[0]) != 200:
                assert status == 503 and time.monotonic() < deadline
                time.sleep(0.2)
            # The retried send of an unacknowledged message is stored once; nothing acked lost.
            assert post(c, messages, {"content": "down0", "echo_id": "d0"})[0] == 200
            assert post(c, messages, {"content": "down0", "echo_id": "d0"})[0] == 200
            listed = [m["content"] for m in c.get(messages).json()]
            assert listed == ["m0", "m1", "m2", "m3", "m4", "back", "down0"]
