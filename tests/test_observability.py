"""The operating layer in process: /metrics (route templates, token, path, off), probes off the
rate limit, X-Request-Id on every response and every log line of its request, JSON log lines,
and the metrics that services, the store and the event loop record."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client import REGISTRY

from gateway.logs import JsonFormatter, TextFormatter
from gateway.observability import request_id_of
from gateway.store import SQLiteStore
from tests.admin_helpers import ADMIN_TOKEN, account_url, admin, auth
from tests.routes_helpers import Env, EnvFactory
from tests.store_contract import make_world

pytestmark = pytest.mark.anyio

MESSAGES_ROUTE = (
    "/public/api/v1/inboxes/{inbox}/contacts/{source_id}/conversations/{conversation_id}/messages"
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in Prometheus text, by exact name and labels."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        found = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if part)
        if metric == name and {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return None


@pytest.fixture
def json_lines() -> Iterator[list[str]]:
    """Every ``inboxgate`` log line, formatted as ``INBOXGATE_LOG_FORMAT=json`` would."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(JsonFormatter(node="node-a"))
    logger = logging.getLogger("inboxgate")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


# -- /metrics --------------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_template(env: Env) -> None:
    source_id, conversation = await env.session()
    before = sample(
        "inboxgate_http_requests_total", route=MESSAGES_ROUTE, method="POST", status="200"
    )
    for n in range(3):
        await env.send(source_id, conversation, content=f"hi {n}")
    r = await env.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    text = r.text
    counted = scraped(
        text, "inboxgate_http_requests_total", method="POST", route=MESSAGES_ROUTE, status="200"
    )
    assert counted == before + 3
    assert source_id not in text and env.inbox.identifier not in text  # never the raw path
    assert "inboxgate_http_request_duration_seconds_bucket" in text
    # Rails' optional .json suffix is the same route.
    inbox_route = {"route": "/public/api/v1/inboxes/{inbox}", "method": "GET", "status": "200"}
    shown = sample("inboxgate_http_requests_total", **inbox_route)
    assert (await env.client.get(env.base + ".json")).status_code == 200
    assert sample("inboxgate_http_requests_total", **inbox_route) == shown + 1
    # A path that matches no route is counted under one label, whatever it is.
    unmatched = sample("inboxgate_http_requests_total", route="unmatched", method="GET",
                       status="404")  # fmt: skip
    assert (await env.client.get("/no/such/path/12345")).status_code == 404
    assert (
        sample("inboxgate_http_requests_total", route="unmatched", method="GET", status="404")
        == unmatched + 1
    )


async def test_messages_are_counted_by_source(env: Env) -> None:
    def counts() -> dict[str, float]:
        return {s: sample("inboxgate_messages_created_total", source=s)
                for s in ("public", "agent", "bot", "api")}  # fmt: skip

    before = counts()
    source_id, display_id = await env.session()
    await env.send(source_id, display_id, content="from the widget", echo_id="e1")
    await env.send(source_id, display_id, content="retried", echo_id="e1")  # the same message
    await admin(env)
    url = account_url(env, f"/conversations/{display_id}/messages")
    replies = [{"content": "an agent's reply"}, {"content": "via API", "message_type": "incoming"}]
    for body in replies:
        r = await env.client.post(url, headers=auth(ADMIN_TOKEN), json=body)
        assert r.status_code == 200, r.text
    r = await env.client.post(
        account_url(env, "/agent_bots"), headers=auth(ADMIN_TOKEN),
        json={"name": "Triage", "outgoing_url": "http://bot.invalid/hook"},
    )  # fmt: skip
    bot_token = r.json()["access_token"]
    r = await env.client.post(url, headers=auth(bot_token), json={"content": "a bot's reply"})
    assert r.status_code == 200, r.text
    after = counts()
    assert {s: after[s] - before[s] for s in after} == {
        "public": 1, "agent": 1, "bot": 1, "api": 1,
    }  # fmt: skip


async def test_metrics_token_path_and_switch(make_env: EnvFactory) -> None:
    async with make_env(metrics_token="s3cret", metrics_path="/internal/prom") as env:
        r = await env.client.get("/internal/prom")
        assert r.status_code == 401
        assert r.json() == {"status": 401, "error": "Unauthorized"}
        assert r.headers["www-authenticate"].startswith("Bearer")
        wrong = await env.client.get("/internal/prom", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await env.client.get("/internal/prom", headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "inboxgate_http_requests_total" in ok.text
        assert (await env.client.get("/metrics")).status_code == 404
    async with make_env(metrics_enabled=False) as env:
        before = sample("inboxgate_http_requests_total", route="/health", method="GET",
                        status="200")  # fmt: skip
        assert (await env.client.get("/metrics")).status_code == 404
        assert (await env.client.get("/health")).status_code == 200
        assert sample("inboxgate_http_requests_total", route="/health", method="GET",
                      status="200") == before  # fmt: skip


async def test_probes_and_scrapes_are_not_rate_limited(make_env: EnvFactory) -> None:
    async with make_env(rate_limit_per_ip=3) as env:
        for _ in range(10):
            for path in ("/health", "/ready", "/metrics"):
                assert (await env.client.get(path)).status_code == 200, path
        statuses = [(await env.client.get(env.base)).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]


async def test_probes_refuse_other_methods_as_the_api_does(env: Env) -> None:
    r = await env.client.post("/ready")
    assert (r.status_code, r.json()) == (404, {"status": 404, "error": "Not Found"})


# -- request ids -----------------------------------------------------------------------------


async def test_request_id_is_echoed_when_sane_and_generated_otherwise(env: Env) -> None:
    r = await env.client.get(env.base, headers={"x-request-id": "lb-7f3a:42"})
    assert r.headers["x-request-id"] == "lb-7f3a:42"
    generated = {(await env.client.get(env.base)).headers["x-request-id"] for _ in range(3)}
    assert len(generated) == 3 and all(len(g) == 32 for g in generated)
    for bad in ("x" * 129, "has space", "tab\there"):
        r = await env.client.get(env.base, headers={"x-request-id": bad})
        assert r.headers["x-request-id"] != bad and len(r.headers["x-request-id"]) == 32
    # On errors, probes and 404s alike.
    for path in ("/nope", "/health", "/ready", "/metrics", env.base + "/contacts/x.json"):
        r = await env.client.get(path, headers={"x-request-id": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123", path
    assert request_id_of([(b"x-request-id", "é".encode())]) != "é"


async def test_an_unexpected_error_answers_500_with_the_id_and_logs_it(
    env: Env, json_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.services.contacts import ContactService

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ContactService, "create", broken)
    transport = httpx.ASGITransport(app=env.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.post(env.base + "/contacts", json={}, headers={"x-request-id": "req-500"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "req-500"
    [line] = [json.loads(x) for x in json_lines if "unhandled error" in x]
    assert line["request_id"] == "req-500" and line["level"] == "error"
    assert "RuntimeError: boom" in line["exception"]
    assert sample("inboxgate_http_requests_total", route="/public/api/v1/inboxes/{inbox}/contacts",
                  method="POST", status="500") >= 1  # fmt: skip
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.post(env.base + "/contacts.json", json={})
    assert r.status_code == 500
    logged = [json.loads(x)["message"] for x in json_lines if "unhandled error" in x]
    assert logged[-1].endswith("/contacts.json")  # the path as the client sent it


async def test_an_unexpected_error_off_the_hot_routes_is_answered_once_and_raised_on(
    env: Env, json_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The router's routes too (the API docs' stylesheet here): answered 500 by the app's
    handler, then raised on to the server, as Starlette's server-error layer did."""
    from gateway.openapi import routes as docs

    def broken() -> bytes:
        raise RuntimeError("bang")

    monkeypatch.setattr(docs, "css_bytes", broken)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http", "method": "GET", "path": docs.CSS_PATH,
        "raw_path": docs.CSS_PATH.encode(), "query_string": b"", "root_path": "",
        "scheme": "http", "http_version": "1.1", "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"testserver"), (b"x-request-id", b"req-501")],
    }  # fmt: skip
    with pytest.raises(RuntimeError, match="bang"):
        await env.app(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [500]
    assert (b"x-request-id", b"req-501") in starts[0]["headers"]
    [line] = [json.loads(x) for x in json_lines if "unhandled error" in x]
    assert line["request_id"] == "req-501" and "RuntimeError: bang" in line["exception"]


async def test_a_probe_that_fails_unexpectedly_answers_500_with_the_id(
    env: Env, json_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.health import Health

    async def broken(self: Health) -> Any:
        raise RuntimeError("probe broke")

    monkeypatch.setattr(Health, "ready", broken)
    transport = httpx.ASGITransport(app=env.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.get("/ready", headers={"x-request-id": "req-502"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-502"
    assert r.json()["status"] == 500
    assert any("probe broke" in x for x in json_lines if "unhandled error" in x)


# -- logs ------------------------------------------------------------------------------------


async def test_access_log_json_line_has_every_field(
    make_env: EnvFactory, json_lines: list[str]
) -> None:
    async with make_env(access_log=True) as env:
        source_id, conversation = await env.session()
        json_lines.clear()
        await env.client.post(
            env.conv_url(source_id, conversation) + "/messages", json={"content": "hello"},
            headers={"x-request-id": "rid-1"},
        )  # fmt: skip
    access = [json.loads(x) for x in json_lines if '"inboxgate.access"' in x]
    [line] = [a for a in access if a["request_id"] == "rid-1"]
    assert set(line) >= {"time", "level", "logger", "message", "request_id", "route", "status",
                         "duration_ms", "client_ip", "node", "method"}  # fmt: skip
    assert (line["level"], line["logger"], line["node"]) == ("info", "inboxgate.access", "node-a")
    assert (line["route"], line["status"], line["method"]) == (MESSAGES_ROUTE, 200, "POST")
    assert line["client_ip"] == "127.0.0.1" and line["duration_ms"] > 0
    assert line["time"].endswith("Z")
    # The contact's source_id (a session credential) is not written to the log.
    assert source_id not in json.dumps(access)


async def test_access_log_is_off_by_default(env: Env, json_lines: list[str]) -> None:
    await env.client.get(env.base)
    assert not [x for x in json_lines if '"inboxgate.access"' in x]


def test_text_lines_carry_the_request_id_before_a_traceback() -> None:
    from gateway.logs import CURRENT, RequestContext

    formatter = TextFormatter()
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record = logging.LogRecord("inboxgate", logging.ERROR, "x", 1, "failed", (), sys.exc_info())
    token = CURRENT.set(RequestContext("rid-9", "GET", "/x", "1.2.3.4", {}))
    try:
        text = formatter.format(record)
    finally:
        CURRENT.reset(token)
    first, _, rest = text.partition("\n")
    assert first.endswith("inboxgate: failed [request_id=rid-9]")
    assert "ValueError: bad" in rest


# -- store and event loop ------------------------------------------------------------------


async def test_store_batches_and_latencies_are_recorded(env: Env) -> None:
    batches = sample("inboxgate_store_write_batch_size_count", engine=env_engine(env))
    reads = sample("inboxgate_store_read_seconds_count", engine=env_engine(env))
    await env.session()
    assert sample("inboxgate_store_write_batch_size_count", engine=env_engine(env)) > batches
    assert sample("inboxgate_store_commit_seconds_count", engine=env_engine(env)) > 0
    assert sample("inboxgate_store_read_seconds_count", engine=env_engine(env)) > reads


async def test_the_sqlite_writer_reports_its_own_cpu(sqlite_store: SQLiteStore) -> None:
    """The writer thread's CPU grows with its batches, and is no more than their wall time
    (what is left of it is the disk's sync)."""
    cpu = sample("inboxgate_store_writer_cpu_seconds_total", engine="sqlite")
    wall = sample("inboxgate_store_commit_seconds_sum", engine="sqlite")
    await make_world(sqlite_store)
    cpu = sample("inboxgate_store_writer_cpu_seconds_total", engine="sqlite") - cpu
    wall = sample("inboxgate_store_commit_seconds_sum", engine="sqlite") - wall
    # The CPU is read a few microseconds after the batch's wall time is.
    assert 0 < cpu <= wall + 0.001


def env_engine(env: Env) -> str:
    return "postgresql" if env.settings.database_url.startswith("postgres") else "sqlite"


async def test_event_loop_lag_is_measured(env: Env) -> None:
    before = sample("inboxgate_event_loop_lag_seconds_count")
    time.sleep(0.8)  # the loop is blocked on purpose: this is the lag to be seen
    with anyio.fail_after(5):
        while sample("inboxgate_event_loop_lag_seconds_count") == before:
            await anyio.sleep(0.05)
    assert sample("inboxgate_event_loop_lag_last_seconds") >= 0.25
    assert sample("inboxgate_event_loop_lag_seconds_bucket", le="0.25") < sample(
        "inboxgate_event_loop_lag_seconds_count"
    )


# -- documentation ---------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs"


def exported_names() -> set[str]:
    from prometheus_client import Counter, Gauge, Histogram

    from gateway import metrics

    found = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            found.add(value._name + "_total")
        elif isinstance(value, Gauge | Histogram):
            found.add(value._name)
    return found


def test_every_metric_is_documented_and_the_dashboard_uses_real_ones() -> None:
    names = exported_names()
    documented = set(re.findall(r"^\| `(inboxgate_\w+)` \|", (DOCS / "metrics.md").read_text(),
                                re.MULTILINE))  # fmt: skip
    assert documented == names
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    used = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"inboxgate_\w+", target["expr"])
    }
    assert used and used <= names, used - names
    assert len(used) >= 25  # nearly every metric has a panel


@pytest.mark.slow
def test_a_served_gateway_writes_json_lines(tmp_path: Path) -> None:
    """``inboxgate serve`` with INBOXGATE_LOG_FORMAT=json: uvicorn's lines and the gateway's
    access line are JSON objects; uvicorn's own access log is off."""
    from tests.server_helpers import gateway_server

    with gateway_server(
        tmp_path, INBOXGATE_LOG_FORMAT="json", INBOXGATE_ACCESS_LOG="1", INBOXGATE_NODE_ID="n-1"
    ) as server:
        inbox = server.provision_inbox()
        path = f"/public/api/v1/inboxes/{inbox['identifier']}"
        r = httpx.get(server.url(path), headers={"x-request-id": "served-1"})
        assert (r.status_code, r.headers["x-request-id"]) == (200, "served-1")
        server.stop()
        lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.error" in loggers and "uvicorn.access" not in loggers
    [access] = [line for line in lines if line.get("request_id") == "served-1"]
    assert access["logger"] == "inboxgate.access" and access["node"] == "n-1"
    assert (access["route"], access["status"], access["client_ip"]) == (
        "/public/api/v1/inboxes/{inbox}", 200, "127.0.0.1",
    )  # fmt: skip
    assert access["duration_ms"] > 0 and access["time"].endswith("Z")
