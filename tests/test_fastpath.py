"""The public routes' fast path (``gateway/fastpath.py``): the table the edge consults ahead of
Starlette's router finds exactly what the router would, requests it leaves alone still reach
their routes, and the base URL that links start with is the request's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route

from gateway import http
from gateway.app import create_app
from gateway.fastpath import HotRoutes, JsonRoute
from gateway.routes.public import CONTACT, CONVERSATION, INBOX
from tests.routes_helpers import PUBLIC, Env, settings_for

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
SEGMENTS = [
    "public", "api", "v1", "inboxes", "contacts", "conversations", "messages", "csat_survey",
    "toggle_status", "toggle_typing", "attachments", "x", "12", "", "a.json", "é", " ",
]  # fmt: skip


def router_choice(routes: list[BaseRoute], method: str, path: str) -> tuple[Any, Any] | None:
    """The route Starlette's router runs for this request, and its path parameters."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child["path_params"]
    return None


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[BaseRoute]:
    app = create_app(settings_for(tmp_path_factory.mktemp("fastpath")))
    return app.routes


def fill(template: str) -> str:
    return template.format(inbox="in", source_id="src", conversation_id="7", message_id="9")


def test_the_hot_public_routes_are_in_the_table(routes: list[BaseRoute]) -> None:
    hot = HotRoutes(routes)
    for method, template in [
        ("GET", INBOX), ("GET", CONTACT), ("GET", CONTACT + "/conversations"),
        ("GET", CONVERSATION), ("GET", CONVERSATION + "/messages"),
        ("POST", CONVERSATION + "/messages"), ("POST", INBOX + "/contacts"),
        ("PATCH", CONTACT), ("PUT", CONVERSATION + "/messages/{message_id}"),
    ]:  # fmt: skip
        found = hot.match(method, fill(template))
        assert found is not None, (method, template)
        assert found == router_choice(routes, method, fill(template))
        assert found[0].path == template


def test_what_the_table_leaves_to_the_router(routes: list[BaseRoute]) -> None:
    hot = HotRoutes(routes)
    for method, path in [
        ("HEAD", fill(INBOX)),  # the router answers HEAD for GET routes
        ("DELETE", fill(INBOX)),  # an undeclared method: the router's 404
        ("GET", fill(INBOX) + "/"),  # the router's slash redirect
        ("GET", PUBLIC + "/inboxes//contacts/src"),  # an empty parameter matches nothing
        ("POST", fill(CONVERSATION) + "/toggle_typing"),  # not a JSON route
        ("GET", "/attachments/t/n.png"),
        ("GET", "/api/v1/profile"),
    ]:
        assert hot.match(method, path) is None, (method, path)


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(METHODS),
    head=st.sampled_from(["", "/public/api/v1/inboxes/in", "/public/api/v1"]),
    tail=st.lists(st.sampled_from(SEGMENTS), max_size=8),
)
def test_the_table_agrees_with_the_router(
    routes: list[BaseRoute], method: str, head: str, tail: list[str]
) -> None:
    path = head + "".join("/" + s for s in tail) or "/"
    found = HotRoutes(routes).match(method, path)
    if found is not None:
        assert found == router_choice(routes, method, path), path


async def endpoint(request: Request) -> Response:
    return Response(b"")


async def handler(request: Request) -> dict[str, str]:
    return {}


def test_a_route_before_that_could_answer_keeps_the_path_for_the_router() -> None:
    hot_inbox = JsonRoute(INBOX, handler, ["GET", "POST"])
    path = fill(INBOX)
    # A literal path the template also matches: the router would choose it for that path.
    special = Route(PUBLIC + "/inboxes/special", endpoint, methods=["GET"])
    table = HotRoutes([special, hot_inbox])
    assert table.match("GET", path) is None
    assert table.match("POST", path) is not None  # the earlier route does not take POST
    # A mount, a typed parameter: not reasoned about, left to the router.
    assert HotRoutes([Mount("/public", routes=[]), hot_inbox]).match("GET", path) is None
    typed = Route(PUBLIC + "/inboxes/{n:int}", endpoint, methods=["GET"])
    assert HotRoutes([typed, hot_inbox]).match("GET", path) is None
    assert HotRoutes([JsonRoute(PUBLIC + "/inboxes/{n:int}", handler, ["GET"])]).match(
        "GET", fill(PUBLIC + "/inboxes/12")
    ) is None  # fmt: skip
    # Another method on the same path before it: a partial match, which a full one wins over.
    other = Route(INBOX, endpoint, methods=["DELETE"])
    assert HotRoutes([other, hot_inbox]).match("GET", path) == (hot_inbox, {"inbox": "in"})


# -- through the app -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_requests_the_table_leaves_alone_reach_the_same_answers(env: Env) -> None:
    source_id, cid = await env.session()
    conversation = env.conv_url(source_id, cid)
    head = await env.client.head(env.base)
    assert head.status_code == 200
    assert head.headers["content-type"] == "application/json; charset=utf-8"
    # Behind a root path the router decides, and answers as the table does.
    import httpx

    transport = httpx.ASGITransport(app=env.app, root_path="/gw")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as behind:
        for path in (env.base, conversation, conversation + "/messages"):
            direct, routed = await env.client.get(path), await behind.get(path)
            assert (routed.status_code, routed.json()) == (200, direct.json()), path
        r = await behind.post(conversation + "/messages", json={"content": "via the router"})
        assert (r.status_code, r.json()["content"]) == (200, "via the router")


@pytest.mark.anyio
async def test_errors_on_the_fast_path_answer_as_through_the_router(env: Env) -> None:
    source_id, cid = await env.session()
    url = env.conv_url(source_id, cid) + "/messages"
    cases = [
        (await env.client.post(url, json={"content": ""}), 422),  # validation
        (await env.client.get(env.conv_url(source_id, 999)), 404),  # not found
        (await env.client.get(env.contact_url("nobody")), 404),
        (await env.client.post(url, content=b"{bad", headers={"content-type": "application/json"}),
         400),
    ]  # fmt: skip
    for r, status in cases:
        assert r.status_code == status
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        assert r.json()["status" if status != 422 else "attributes"]
        assert len(r.headers["x-request-id"]) == 32


@pytest.mark.anyio
async def test_the_inbox_view_is_kept_until_the_inbox_changes(env: Env) -> None:
    from tests.admin_helpers import ADMIN_TOKEN, account_url, admin, auth

    await admin(env)
    first = (await env.client.get(env.base)).json()
    assert first["pre_chat_form_enabled"] is False
    assert (await env.client.get(env.base)).json() == first  # the kept view
    attributes = {
        "pre_chat_form_enabled": True,
        "pre_chat_form_options": {"pre_chat_message": "Hi"},
    }
    r = await env.client.patch(
        account_url(env, f"/inboxes/{env.inbox.id}"), headers=auth(ADMIN_TOKEN),
        json={"channel": {"additional_attributes": attributes}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    shown = (await env.client.get(env.base)).json()  # at once: the update replaced the record
    assert (shown["pre_chat_form_enabled"], shown["pre_chat_form_options"]) == (
        True, {"pre_chat_message": "Hi"},
    )  # fmt: skip


# -- base URLs -------------------------------------------------------------------------------


def scope_of(**over: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http", "scheme": "http", "server": ("10.0.0.1", 8000), "root_path": "",
        "path": "/x", "query_string": b"", "headers": [],
    }  # fmt: skip
    scope.update(over)
    return scope


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"headers": [(b"host", b"chat.example.com")]},
        {"headers": [(b"host", b"a.example"), (b"host", b"b.example")]},
        {"scheme": "https", "server": ("10.0.0.1", 443)},
        {"scheme": "https", "server": ("10.0.0.1", 8443), "root_path": "/gw"},
        {"server": None, "headers": [(b"host", b"h:81")]},
        {"server": ["10.0.0.2", 80]},  # a list, as some servers give: not remembered
    ],
)
def test_base_url_is_the_requests_own(over: dict[str, Any]) -> None:
    for _ in range(2):  # computed, then remembered
        request = Request(scope_of(**over))
        assert http.base_url(request) == str(request.base_url).rstrip("/")


def test_base_urls_remembered_are_bounded(tmp_path: Path) -> None:
    for n in range(http.MAX_BASE_URLS * 3):
        request = Request(scope_of(headers=[(b"host", f"h{n}.example".encode())]))
        assert http.base_url(request) == f"http://h{n}.example"
    assert len(http._BASE_URLS) <= http.MAX_BASE_URLS
