"""Real-browser tests of the widget and the agent console: Playwright driving Debian's Chromium
(``/usr/bin/chromium``; ``.ci/run`` installs it, nothing ever downloads a browser) against
``inboxgate serve --demo`` under uvicorn.

Page objects keep the tests readable::

    with launch_chromium() as browser, demo_gateway(tmp_path) as (server, demo):
        customer = Widget.on_host_page(browser.new_context(), server, demo.inbox)
        customer.open()
        customer.send("Hello")
        agent = Console.signed_in(browser.new_context(), server, demo.token)

Every page records its JavaScript errors; :func:`no_page_errors` asserts there were none.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    expect,
    sync_playwright,
)

from tests.server_helpers import HOST, GatewayProcess

CHROMIUM = Path("/usr/bin/chromium")
HOST_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title></head>
<body><h1>A shop</h1><p>Somebody's website with the chat widget on it.</p>
<script>window.inboxgateSettings = {settings};</script>
<script src="{gateway}/static/widget.js" data-inbox="{inbox}" async></script></body></html>"""
TIMEOUT_MS = 20_000


class HostSite:
    """Customers' websites: a real HTTP server on another loopback port, one page per path.
    (Not a routed fake origin: Chromium's Private Network Access rules would then refuse a
    loopback gateway, which a real site on the internet never meets.)"""

    def __init__(self) -> None:
        pages = self.pages = {}  # type: dict[str, tuple[bytes, str]]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page, content_type = pages.get(self.path, (b"", "text/plain"))
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="host-site")

    def page(self, body: str, content_type: str = "text/html; charset=utf-8") -> str:
        """Serve ``body`` at a new path; returns its URL."""
        path = f"/page-{len(self.pages)}"
        self.pages[path] = (body.encode(), content_type)
        return f"http://{HOST}:{self.server.server_port}{path}"

    def __enter__(self) -> HostSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


IMAGES_LOADED = "Array.from(document.images).every(i => i.complete)"


def wait_until(page: Page, predicate: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Until the JavaScript expression ``predicate`` is true in ``page``.

    Not ``page.wait_for_function``: when its first try is false it polls inside the page,
    compiling the predicate there, which the pages' CSP (``script-src 'self'``, no
    ``'unsafe-eval'``) refuses with an EvalError. ``page.evaluate`` goes through the debugging
    protocol, which the CSP does not govern."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_ms} ms: {predicate}")
        page.wait_for_timeout(50)


def require_chromium() -> None:
    """Skip off CI when Debian's Chromium is absent; under CI its absence is a failure."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI installs it")


@contextlib.contextmanager
def launch_chromium() -> Iterator[Browser]:
    require_chromium()
    # Chromium refuses its sandbox as root (CI runs as root); elsewhere it keeps it.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class Demo:
    """What ``serve --demo`` provisioned (its ``demo.json``)."""

    inbox: str
    token: str
    account_id: int
    inbox_id: int
    hmac_token: str


@contextlib.contextmanager
def demo_gateway(root: Path) -> Iterator[tuple[GatewayProcess, Demo]]:
    server = GatewayProcess(root, serve_args=("--demo",))
    try:
        server.start()
        raw = json.loads((root / "data" / "demo.json").read_text())
        yield (
            server,
            Demo(
                raw["inbox_identifier"],
                raw["access_token"],
                raw["account_id"],
                raw["inbox_id"],
                raw["hmac_token"],
            ),
        )
    finally:
        server.kill()


def agent_api(server: GatewayProcess, demo: Demo, method: str, path: str, **kw: Any) -> Any:
    """One agent API call (``/api/v1/accounts/{id}`` + path) as the demo agent."""
    url = server.url(f"/api/v1/accounts/{demo.account_id}{path}")
    response = httpx.request(
        method, url, headers={"api_access_token": demo.token}, timeout=10, **kw
    )
    response.raise_for_status()
    return response.json() if response.content else None


class Customer:
    """A customer of the demo inbox through the public API (no browser): one contact, one
    conversation. Seeds what the browser tests and the screenshots look at."""

    def __init__(self, server: GatewayProcess, demo: Demo, name: str, email: str) -> None:
        self.server, self.demo = server, demo
        self.http = httpx.Client(
            base_url=server.url(f"/public/api/v1/inboxes/{demo.inbox}"), timeout=10
        )
        contact = self._post("/contacts", {"name": name, "email": email})
        self.source_id: str = contact["source_id"]
        self.conversation: int = self._post(f"/contacts/{self.source_id}/conversations", {})["id"]

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def says(self, text: str) -> int:
        path = f"/contacts/{self.source_id}/conversations/{self.conversation}/messages"
        return int(self._post(path, {"content": text})["id"])

    def given_status(self, status: str) -> None:
        """An agent sets the conversation's status (``resolved``, ``pending``, ...)."""
        path = f"/conversations/{self.conversation}/toggle_status"
        agent_api(self.server, self.demo, "POST", path, json={"status": status})

    def close(self) -> None:
        self.http.close()


def watch_errors(page: Page) -> Page:
    """Record the page's uncaught errors, any dialog (an injected ``alert`` would be one) and
    anything its Content-Security-Policy refused (a page that needs what its policy forbids)."""
    errors: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        errors.append("dialog: " + dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append("csp: " + message.text)

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def no_page_errors(*pages: Page) -> None:
    for page in pages:
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


class Widget:
    """The customer's side: a page with the widget on it."""

    def __init__(self, page: Page) -> None:
        self.page = watch_errors(page)

    @classmethod
    def on_host_page(
        cls,
        context: BrowserContext,
        site: HostSite,
        server: GatewayProcess,
        inbox: str,
        settings: dict[str, Any] | None = None,
    ) -> Widget:
        """The widget on a page of another origin (a site on another port), through CORS."""
        body = HOST_PAGE.format(
            gateway=server.base_url, inbox=inbox, settings=json.dumps(settings or {})
        )
        widget = cls(context.new_page())
        widget.goto(site.page(body))
        return widget

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.wait_ready()

    def wait_ready(self) -> None:
        expect(self.page.locator(".ig-root[data-ready=true]")).to_have_count(1, timeout=TIMEOUT_MS)

    def reload(self) -> None:
        self.page.reload()
        self.wait_ready()

    def open(self) -> None:
        if not self.page.locator(".ig-panel").is_visible():
            self.page.click(".ig-launcher")
        expect(self.page.locator(".ig-panel")).to_be_visible()

    def close(self) -> None:
        self.page.keyboard.press("Escape")
        expect(self.page.locator(".ig-panel")).to_be_hidden()

    def send(self, text: str) -> None:
        self.page.fill(".ig-input", text)
        self.page.press(".ig-input", "Enter")

    @property
    def messages(self) -> Any:
        return self.page.locator(".ig-messages .ig-message")

    def texts(self) -> list[str]:
        return [t.strip() for t in self.page.locator(".ig-messages .ig-text").all_inner_texts()]

    def expect_texts(self, expected: list[str]) -> None:
        """Exactly these texts (in this order), each once, none still pending."""
        expect(self.page.locator(".ig-messages .ig-text")).to_have_text(
            expected, timeout=TIMEOUT_MS
        )
        expect(self.page.locator(".ig-message:not([data-id])")).to_have_count(0, timeout=TIMEOUT_MS)


class Console:
    """The agent's side: the console, signed in."""

    def __init__(self, page: Page) -> None:
        self.page = watch_errors(page)

    @classmethod
    def signed_in(cls, context: BrowserContext, server: GatewayProcess, token: str) -> Console:
        console = cls(context.new_page())
        console.page.goto(server.url("/console"))
        console.page.fill("#token", token)
        console.page.click("#signin button[type=submit]")
        expect(console.page.locator("#app")).to_be_visible(timeout=TIMEOUT_MS)
        expect(console.page.locator("#connection")).to_have_text("Live", timeout=TIMEOUT_MS)
        return console

    def conversation(self, name_or_index: int = 0) -> Any:
        return self.page.locator("#conversations .conversation").nth(name_or_index)

    def open(self, index: int = 0) -> None:
        item = self.conversation(index)
        expect(item).to_be_visible(timeout=TIMEOUT_MS)
        item.click()
        expect(self.page.locator("#detail")).to_be_visible()

    @property
    def names(self) -> Any:
        """The contact names of the listed conversations, newest activity first."""
        return self.page.locator("#conversations .conversation strong")

    def wait_listed(self) -> None:
        expect(self.page.locator("#conversations")).to_have_attribute(
            "aria-busy", "false", timeout=TIMEOUT_MS
        )

    def search(self, text: str) -> None:
        """Search (Enter: at once, without the typing pause) and wait for the results."""
        self.page.fill("#search", text)
        self.page.press("#search", "Enter")
        self.wait_listed()

    def filter_status(self, status: str) -> None:
        self.page.select_option("#status-filter", status)
        self.wait_listed()

    def reply(self, text: str, *, private: bool = False) -> None:
        self.page.set_checked("#private", private)
        self.page.fill("#reply-text", text)
        self.page.press("#reply-text", "Enter")

    def texts(self) -> list[str]:
        return [t.strip() for t in self.page.locator("#messages .text").all_inner_texts()]

    def expect_texts(self, expected: list[str]) -> None:
        expect(self.page.locator("#messages .text")).to_have_text(expected, timeout=TIMEOUT_MS)


def screenshot(page: Page, name: str, directory: Path) -> Path:
    """Write DIRECTORY/NAME.png. Tests pass their ``tmp_path``: only ``python -m
    tests.screenshots`` refreshes the README's pictures in docs/screenshots."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path))
    return path
