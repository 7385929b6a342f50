"""``inboxgate serve --workers 2``: one scrape shows the sum over both worker processes
(prometheus_client's multiprocess mode, set up by the CLI), the directory is emptied at start,
and one the CLI made itself is removed at exit. Real PostgreSQL and Redis, as ``--workers``
requires."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.postgres_helpers import fresh_database_sync
from tests.server_helpers import GatewayProcess, server_env

pytestmark = pytest.mark.slow

REQUESTS = 40
ROUTE = "/public/api/v1/inboxes/{inbox}"


def counted(text: str) -> float:
    pattern = rf'^inboxgate_http_requests_total\{{method="GET",route="{re.escape(ROUTE)}",' \
        r'status="200"\} (\S+)$'  # fmt: skip
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def pids_of(directory: Path, kind: str) -> set[str]:
    return {
        m.group(1) for p in directory.iterdir() if (m := re.match(rf"{kind}_(\d+)\.db$", p.name))
    }


def test_one_scrape_sums_every_worker(tmp_path: Path, redis_url: str, prefix: str) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    (shared / "counter_4194301.db").write_bytes(b"left by an earlier run")
    with fresh_database_sync() as database:
        env = server_env(
            tmp_path, INBOXGATE_DATABASE_URL=database, INBOXGATE_REDIS_URL=redis_url,
            INBOXGATE_REDIS_PREFIX=prefix, INBOXGATE_RATE_LIMIT_PER_IP="0",
        )  # fmt: skip
        env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
        server = GatewayProcess(tmp_path, env, serve_args=("--workers", "2"))
        with server:
            inbox = server.provision_inbox()
            url = server.url(f"/public/api/v1/inboxes/{inbox['identifier']}")
            # A new connection per request, so the kernel spreads them over both workers.
            fresh = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(timeout=10.0, limits=fresh) as http:
                for _ in range(REQUESTS):
                    assert http.get(url).status_code == 200
                scrapes = [http.get(server.url("/metrics")).text for _ in range(6)]
            assert not (shared / "counter_4194301.db").exists()  # emptied at start
            # Both workers keep live gauges in the shared directory (those of the provisioning
            # commands, dead now, were swept by the scrapes), and every scrape, whichever
            # worker answers it, shows all 40 requests.
            assert [counted(text) for text in scrapes] == [REQUESTS] * len(scrapes)
            assert len(pids_of(shared, "gauge_livesum")) == 2
            assert all("inboxgate_cable_connections 0.0" in text for text in scrapes)
            server.stop()
        assert shared.exists()  # the operator's directory is theirs to keep


def test_the_cli_makes_and_removes_its_own_directory(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with fresh_database_sync() as database:
        env = server_env(
            tmp_path, INBOXGATE_DATABASE_URL=database, INBOXGATE_REDIS_URL=redis_url,
            INBOXGATE_REDIS_PREFIX=prefix, TMPDIR=str(temp),
        )  # fmt: skip
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        server = GatewayProcess(tmp_path, env, serve_args=("--workers", "2"))
        with server:
            [made] = list(temp.glob("inboxgate-metrics-*"))
            with httpx.Client(timeout=10.0) as http:
                assert "inboxgate_http_requests_total" in http.get(server.url("/metrics")).text
            server.stop()
        assert not made.exists()
