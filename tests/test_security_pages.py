"""The console and demo pages carry a CSP without inline script and refuse framing by others;
the widget's files stay embeddable from any origin (gateway/routes/static.py). The browser
side (the pages still work under their policy) is in tests/test_browser_security.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.routes.static import STATIC_DIR
from tests.routes_helpers import settings_for

pytestmark = pytest.mark.anyio

DEMO_INBOX = "demo-inbox-id"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(
        tmp_path, demo_inbox=DEMO_INBOX, public_url="https://chat.example.com/base"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def _directives(csp: str) -> dict[str, list[str]]:
    found = {}
    for part in csp.split(";"):
        name, *values = part.split()
        assert name not in found, f"{name} twice"
        found[name] = values
    return found


def _assert_page_policy(csp: str, frame_ancestors: str) -> dict[str, list[str]]:
    d = _directives(csp)
    assert d["default-src"] == ["'none'"]
    assert d["script-src"] == ["'self'"]
    assert d["style-src"] == ["'self'"]
    assert d["connect-src"] == ["'self'"]
    assert d["base-uri"] == ["'none'"]
    assert d["frame-ancestors"] == [frame_ancestors]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "https://chat.example.com" in d["img-src"]  # attachment links use public_url
    return d


async def test_console_page_policy(client: httpx.AsyncClient) -> None:
    r = await client.get("/console")
    assert r.status_code == 307 and r.headers["location"] == "/static/console.html"
    r = await client.get("/static/console.html")
    assert r.status_code == 200
    d = _assert_page_policy(r.headers["content-security-policy"], "'none'")
    assert d["img-src"] == ["'self'", "https://chat.example.com"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    # A revalidation keeps the policy.
    again = await client.get("/static/console.html", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["content-security-policy"] == r.headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/demo", "/static/demo.html"])
async def test_demo_page_policy(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    d = _assert_page_policy(r.headers["content-security-policy"], "'self'")
    assert {"https:", "blob:"} <= set(d["img-src"])  # card images, the widget's previews
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("widget.js", "javascript"), ("cable.js", "javascript"), ("widget.css", "text/css")],
)
async def test_widget_files_stay_embeddable(
    client: httpx.AsyncClient, name: str, kind: str
) -> None:
    r = await client.get(f"/static/{name}", headers={"origin": "https://shop.example"})
    assert r.status_code == 200
    assert kind in r.headers["content-type"]
    assert r.headers["x-content-type-options"] == "nosniff"
    for refusing in (
        "content-security-policy", "x-frame-options", "cross-origin-resource-policy",
        "cross-origin-embedder-policy", "cross-origin-opener-policy",
    ):  # fmt: skip
        assert refusing not in r.headers


class _Inline(HTMLParser):
    """Whatever a CSP without 'unsafe-inline' would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag} {n}=" for n in names if n == "style" or n.startswith("on")]
        for name, value in attrs:
            if value and re.match(r"\s*javascript:", value, re.I):
                self.found.append(f"{tag} {name}=javascript:")


@pytest.mark.parametrize("page", ["console.html", "demo.html"])
def test_pages_have_nothing_inline(page: str) -> None:
    parser = _Inline()
    parser.feed((STATIC_DIR / page).read_text(encoding="utf-8"))
    assert parser.found == []


def test_the_inline_check_can_fail() -> None:
    parser = _Inline()
    parser.feed('<p style="x" onclick="y()"><script>z()</script><style></style>')
    assert sorted(parser.found) == sorted(["p style=", "p onclick=", "inline <script>", "<style>"])


@pytest.mark.parametrize("script", ["console.js", "widget.js", "cable.js"])
def test_scripts_write_no_inline_style_or_code(script: str) -> None:
    """Under the pages' CSP a ``style`` attribute, ``eval`` or an inline handler string would
    be refused at run time; the browser tests run the pages, this names the culprit."""
    source = (STATIC_DIR / script).read_text(encoding="utf-8")
    for banned in ('"style"', "'style'", "eval(", "new Function", 'setAttribute("on'):
        assert banned not in source, f"{script} uses {banned}"
