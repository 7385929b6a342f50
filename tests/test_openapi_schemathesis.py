"""Schemathesis against inboxgate's own OpenAPI document, on a live server, with every check.

A real ``inboxgate serve`` (uvicorn, loopback) gets an account, two inboxes, an administrator,
an agent and a platform app from the CLI, then a contact session, conversations, a message, a
contact, a webhook and agent bots through its APIs. The document it serves at
``/openapi.json`` is fetched, its path parameters pinned (``enum``) to those records so that
requests reach the handlers rather than stopping at a 404, and ``schemathesis run --checks
all`` fuzzes every operation with the three tokens (agent, platform app, GoHighLevel bearer).

The run must show no 5xx at all and no failed check, except the checks in ``EXCLUDED`` (each
with the reason it cannot hold for a Chatwoot-compatible API). Reproduce by hand::

    pytest tests/test_openapi_schemathesis.py -s   # prints the figures
    INBOXGATE_OPENAPI_MAX_EXAMPLES=60 INBOXGATE_OPENAPI_SEED=7 pytest ... -s   # a wider run
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.schemathesis_report import count_responses
from tests.server_helpers import GatewayProcess, gateway_server

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("INBOXGATE_OPENAPI_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("INBOXGATE_OPENAPI_SEED", "1"))
RUN_TIMEOUT = 300.0

# Checks that cannot hold for a Chatwoot-compatible API, deliberately: they are not run.
EXCLUDED = {
    # Rails (so Chatwoot, so inboxgate: gateway/app.py ``_http_error``) answers a method a
    # path does not declare with 404, not 405 with an Allow header.
    "unsupported_method": "an undeclared method is Rails' 404 (gateway/app.py), not a 405",
    # Requests are decoded leniently, as Rails casts them (client_sdk/protocol/, "Requests
    # are lenient"): 0/1 and "true" are booleans, "5" is a number, a non-numeric page is page
    # 1, unknown fields and multipart parts that are not files are ignored. Invalid data that
    # Chatwoot accepts is accepted; what it refuses is a 4xx, which the other checks see.
    "negative_data_rejection": "lenient decoding accepts what Rails/Chatwoot accept",
}
# positive_data_acceptance: schema-valid data may still break a rule no schema states (a
# referenced inbox, contact or location must exist in the account, an e-mail must be unique,
# a name must not be blank once trimmed, a webhook URL must be public, a CSAT rating 1-5):
# Chatwoot answers 422 for those, so a 422 is accepted as well as schemathesis' defaults. A
# 400 (the body itself refused) on valid data still fails.
POSITIVE_STATUSES = ("2xx", "3xx", "401", "403", "404", "409", "422", "429")


# -- provisioning ---------------------------------------------------------------------------


@dataclass
class Live:
    server: GatewayProcess
    agent_token: str
    platform_token: str
    # (operationId prefix, path parameter) -> the value every request of those operations uses
    pins: dict[tuple[str, str], Any]


def provision(server: GatewayProcess) -> Live:
    """Records for every path parameter, the CLI first then the running server's APIs."""
    public = server.provision_inbox(csat=True)
    account = public["account_id"]
    other = server.cli("inbox", "create", "--account", str(account), "--name", "Back office")
    admin = server.cli(
        "user", "create", "--account", str(account), "--email", "admin@fuzz.example",
        "--name", "Admin", "--role", "administrator",
    )  # fmt: skip
    agent = server.cli(
        "user", "create", "--account", str(account), "--email", "agent@fuzz.example",
        "--name", "Agent", "--inbox", str(public["id"]),
    )  # fmt: skip
    app = server.cli("platform-app", "create", "--name", "Fuzz")
    agent_auth = {"api_access_token": admin["access_token"]}
    app_auth = {"api_access_token": app["access_token"]}
    base = f"/public/api/v1/inboxes/{public['identifier']}"
    agent_api, platform = f"/api/v1/accounts/{account}", "/platform/api/v1"
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:

        def post(path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 200, (path, response.text[:300])
            return response.json()

        contact = post(f"{base}/contacts", {"name": "Fuzz", "email": "f@x.io"})
        session = f"{base}/contacts/{contact['source_id']}"
        conversation = post(f"{session}/conversations")
        doomed = post(f"{session}/conversations")  # for DELETE
        message = post(f"{session}/conversations/{conversation['id']}/messages", {"content": "hi"})
        created = post(f"{agent_api}/contacts", {"name": "C"}, **agent_auth)
        webhook = post(f"{agent_api}/webhooks", {"url": "https://hooks.example/in"}, **agent_auth)
        bot = post(f"{agent_api}/agent_bots", {"name": "B"}, **agent_auth)
        p_account = post(f"{platform}/accounts", {"name": "P"}, **app_auth)
        p_user = post(f"{platform}/users", {"name": "U", "email": "u@fuzz.example"}, **app_auth)
        p_bot = post(f"{platform}/agent_bots", {"name": "PB"}, **app_auth)
    pins: dict[tuple[str, str], Any] = {
        ("public_", "inbox"): public["identifier"],
        ("public_", "source_id"): contact["source_id"],
        ("public_", "conversation_id"): conversation["id"],
        ("public_", "message_id"): message["id"],
        ("public_csat", "uuid"): conversation["uuid"],
        ("agent_conversation_delete", "conversation_id"): doomed["id"],
        ("agent_", "account_id"): account,
        ("agent_", "conversation_id"): conversation["id"],
        ("agent_", "message_id"): message["id"],
        ("agent_", "contact_id"): created["payload"]["contact"]["id"],
        # Not the public inbox: an update may make its HMAC mandatory.
        ("agent_", "inbox_id"): other["id"],
        ("agent_", "user_id"): agent["id"],  # never the administrator whose token is used
        ("agent_", "webhook_id"): webhook["payload"]["webhook"]["id"],
        ("agent_", "bot_id"): bot["id"],
        ("platform_", "account_id"): p_account["id"],
        ("platform_", "user_id"): p_user["id"],
        ("platform_", "bot_id"): p_bot["id"],
    }
    return Live(server, admin["access_token"], app["access_token"], pins)


def pinned(document: dict[str, Any], pins: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """The document with each path parameter that has a record fixed to it (the longest
    matching operationId prefix wins)."""
    pinned_doc = copy.deepcopy(document)
    for item in pinned_doc["paths"].values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param["in"] != "path":
                    continue
                matches = [
                    (len(prefix), value)
                    for (prefix, name), value in pins.items()
                    if name == param["name"] and operation["operationId"].startswith(prefix)
                ]
                if matches:
                    param["schema"] = {**param["schema"], "enum": [max(matches)[1]]}
    return pinned_doc


def config_file(live: Live, path: Path) -> Path:
    """schemathesis.toml: each security scheme of the document gets its token."""
    path.write_text(
        f'[auth.openapi.agentToken]\napi_key = "{live.agent_token}"\n'
        f'[auth.openapi.platformToken]\napi_key = "{live.platform_token}"\n'
        f'[auth.openapi.highLevelBearer]\nbearer = "{live.agent_token}"\n'
        "[checks.positive_data_acceptance]\n"
        f"expected-statuses = {json.dumps(list(POSITIVE_STATUSES))}\n"
    )
    return path


def schemathesis_command(schema: Path, config: Path, base_url: str, report: Path) -> list[str]:
    return [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        str(schema),
        "--url", base_url,
        "--checks", "all",
        "--exclude-checks", ",".join(EXCLUDED),
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--continue-on-failure",
        "--request-timeout", "10",
        "--generation-database", "none",
        "--no-color",
        "--report", "ndjson",
        "--report-ndjson-path", str(report),
    ]  # fmt: skip


# -- the report -----------------------------------------------------------------------------


STATEFUL = "Stateful tests"  # schemathesis' label for its link-following phase


@dataclass
class Report:
    """What schemathesis' NDJSON events say: cases per operation, statuses, failed checks."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    checks: Counter[tuple[str, str]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    details: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def read(self, path: Path) -> None:
        for line in path.read_text().splitlines():
            ((kind, body),) = json.loads(line).items()
            if kind == "ScenarioFinished":
                self._scenario(body)
            elif "Error" in kind:
                self.errors.append(json.dumps(body)[:2000])

    def _scenario(self, body: dict[str, Any]) -> None:
        recorder = body.get("recorder") or {}
        label = recorder.get("label", "?")
        count_responses(recorder, self.statuses, self.server_errors)
        for case_id in recorder.get("cases") or {}:
            if case_id not in self.seen:
                self.seen.add(case_id)
                self.cases[label] += 1
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                status = check["status"]
                self.checks[(check["name"], status)] += 1
                if status != "failure":
                    continue
                failure = check.get("failure_info", {}).get("failure", {})
                message = failure.get("message", "")
                key = (check["name"], failure.get("operation", label), message.split("\n")[0])
                self.failures[key] += 1
                self.details.setdefault(key, message[:1500])

    def summary(self) -> str:
        lines = [
            f"operations tested: {len(set(self.cases) - {STATEFUL})}"
            f" (+ stateful sequences: {self.cases[STATEFUL]} cases)",
            f"test cases: {sum(self.cases.values())}",
            f"responses: {sum(self.statuses.values())} ("
            + ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items())) + ")",
            f"server errors: {len(self.server_errors)}",
            "schema violations: "
            f"{self.checks[('response_schema_conformance', 'failure')]}",
            "checks: " + ", ".join(
                f"{name} {status}: {n}" for (name, status), n in sorted(self.checks.items())
            ),
        ]  # fmt: skip
        for (check, operation, first), n in sorted(self.failures.items()):
            lines.append(f"  {n:4d}  {check} {operation}: {first}")
        return "\n".join(lines)


# -- the run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("openapi-fuzz")
    # Thousands of requests from one loopback address; sends far past a human's rate.
    with gateway_server(
        root, INBOXGATE_RATE_LIMIT_PER_IP="0", INBOXGATE_MESSAGES_PER_MINUTE="0"
    ) as server:
        yield provision(server)


@pytest.mark.timeout(RUN_TIMEOUT + 120)
def test_the_gateway_conforms_to_its_own_openapi_document(live: Live, tmp_path: Path) -> None:
    document = httpx.get(live.server.url("/openapi.json"), timeout=10.0).json()
    operations = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(pinned(document, live.pins)))
    report_path = tmp_path / "schemathesis.ndjson"
    command = schemathesis_command(
        schema, config_file(live, tmp_path / "schemathesis.toml"), live.server.base_url,
        report_path,
    )  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert report_path.exists(), f"schemathesis wrote no report (exit {done.returncode}):\n{output}"
    report = Report()
    report.read(report_path)
    print(report.summary())

    assert not report.errors, f"schemathesis errors:\n{report.errors}\n{output}"
    tested = set(report.cases) - {STATEFUL}
    assert tested == operations, sorted(operations ^ tested)
    assert sum(report.cases.values()) >= 5 * len(operations), report.summary()
    assert report.statuses[200] > len(operations), "too few requests reached a handler"
    assert report.checks[("response_schema_conformance", "success")] > 0
    assert not report.server_errors, report.server_errors[:10]
    assert not report.failures, "\n\n".join(
        f"{check} on {operation} x{n}:\n{report.details[(check, operation, first)]}"
        for (check, operation, first), n in sorted(report.failures.items())
    )


# -- the report machinery can fail ----------------------------------------------------------


def test_the_report_counts_every_failure(tmp_path: Path) -> None:
    def interaction(status: int, uri: str, body: str = "") -> dict[str, Any]:
        encoded = {"$base64": base64.b64encode(body.encode()).decode()}
        return {"request": {"method": "GET", "uri": uri, "body": encoded},
                "response": {"status_code": status}}  # fmt: skip

    def failed(name: str, message: str) -> list[dict[str, Any]]:
        failure = {"operation": "GET /x", "message": message}
        return [{"name": name, "status": "failure", "failure_info": {"failure": failure}}]

    recorder = {
        "label": "GET /x",
        "interactions": {
            "a": interaction(500, "http://h/api/v1/accounts/12345678901234567890/x"),
            "b": interaction(500, "http://h/x", '{"inbox_id": 1}'),
            "c": interaction(200, "http://h/x"),
            "d": interaction(500, "http://h/x", '{"user_ids": [123456789012345678901]}'),
        },
        "cases": {"a": {}, "b": {}, "c": {}, "d": {}},
        "checks": {
            "a": failed("not_a_server_error", "Server error"),
            "b": failed("not_a_server_error", "Server error"),
            "c": failed("response_schema_conformance", '1 is not of type "string"\n\nmore'),
            "d": failed("not_a_server_error", "Server error"),
        },
    }
    path = tmp_path / "report.ndjson"
    path.write_text(json.dumps({"ScenarioFinished": {"recorder": recorder}}) + "\n")
    report = Report()
    report.read(path)
    assert report.cases == {"GET /x": 4}
    assert report.server_errors == [
        "500 GET http://h/api/v1/accounts/12345678901234567890/x", "500 GET http://h/x",
        "500 GET http://h/x",
    ]  # fmt: skip
    assert report.failures == {
        ("not_a_server_error", "GET /x", "Server error"): 3,
        ("response_schema_conformance", "GET /x", '1 is not of type "string"'): 1,
    }
    assert "schema violations: 1" in report.summary()
