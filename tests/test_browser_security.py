"""In Chromium: a customer's hostile SVG never runs on the gateway's origin, the attachment
headers make even an SVG that did render inert, and the console works under its CSP, which
refuses inline script and framing by another site."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError

from tests.browser_helpers import (
    TIMEOUT_MS,
    Console,
    Demo,
    HostSite,
    Widget,
    no_page_errors,
    watch_errors,
)
from tests.server_helpers import GatewayProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)
# Runs in any document it becomes: marks the page and calls alert.
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>document.documentElement.setAttribute('data-pwned', '1');"
    b"alert('xss from ' + document.domain);</script></svg>"
)


def _attachment_links(console: Console, count: int) -> list[str]:
    links = console.page.locator("#messages a[href*='/attachments/']")
    expect(links).to_have_count(count, timeout=TIMEOUT_MS)
    return [str(links.nth(i).get_attribute("href")) for i in range(count)]


def _expect_download(page: Page, url: str) -> str:
    """Navigate to ``url``, which must download rather than render; the file's name."""
    with page.expect_download() as info, pytest.raises(PlaywrightError, match="Download is"):
        page.goto(url)
    return info.value.suggested_filename


def test_hostile_svg_from_the_widget_never_runs_in_the_console(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo], tmp_path: Path
) -> None:
    server, demo = gateway
    customer = Widget.on_host_page(browser.new_context(), site, server, demo.inbox)
    customer.open()
    customer.send("Here are my files")
    customer.expect_texts(["Here are my files"])
    for name, body in [("receipt.png", PNG), ("evil.svg", SVG), ("fake.png", SVG)]:
        upload = tmp_path / name
        upload.write_bytes(body)
        customer.page.set_input_files(".ig-file", str(upload))
    expect(customer.page.locator(".ig-message:not([data-id])")).to_have_count(0, timeout=TIMEOUT_MS)

    context = browser.new_context()
    agent = Console.signed_in(context, server, demo.token)
    agent.open(0)
    png_url, svg_url, fake_url = _attachment_links(agent, 3)
    # The real image shows in the console, under the console's img-src.
    image = agent.page.locator("#messages img")
    expect(image).to_have_count(2, timeout=TIMEOUT_MS)  # receipt.png and fake.png claim image
    expect(image.first).to_have_js_property("naturalWidth", 2, timeout=TIMEOUT_MS)
    assert image.nth(1).evaluate("img => img.complete && img.naturalWidth") == 0  # not an image

    # Opened from the console, in the console's context (its token in sessionStorage): the
    # SVG, however it was labelled, is a download, never a document of the gateway's origin.
    viewer = watch_errors(context.new_page())
    for url, name in [(svg_url, "evil.svg"), (fake_url, "fake.png")]:
        assert _expect_download(viewer, url) == name
    viewer.goto(png_url)  # the PNG still opens inline
    expect(viewer.locator("img")).to_have_js_property("naturalWidth", 2, timeout=TIMEOUT_MS)
    # The agent clicking the link: a download too, no script anywhere.
    with context.expect_event("download") as clicked:
        agent.page.locator(f"#messages a[href='{svg_url}']").click()
    assert clicked.value.suggested_filename == "evil.svg"
    no_page_errors(customer.page, agent.page, viewer)


def test_attachment_headers_make_a_rendered_svg_inert(
    browser: Browser, gateway: tuple[GatewayProcess, Demo]
) -> None:
    """Should an SVG ever be served inline (a row stored before the checks, a polyglot), the
    headers every attachment carries keep its script from running: the gateway's real headers
    around an SVG body, against a control without them."""
    server, demo = gateway
    base = f"/public/api/v1/inboxes/{demo.inbox}/contacts"
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        source_id = http.post(base, json={}).json()["source_id"]
        conversation = http.post(f"{base}/{source_id}/conversations", json={}).json()["id"]
        sent = http.post(
            f"{base}/{source_id}/conversations/{conversation}/messages",
            files=[("attachments[]", ("a.png", PNG, "image/png"))],
        ).json()
        url = sent["attachments"][0]["data_url"]
        real = dict(http.get(url).headers)
    assert real["content-security-policy"].startswith("sandbox")

    def run_svg_with(headers: dict[str, str]) -> tuple[Page, list[str]]:
        context = browser.new_context()
        # Serve the SVG at the attachment's own URL, with the gateway's origin.
        headers = {k: v for k, v in headers.items() if k not in ("content-length", "etag")}

        def fulfil(route: Route) -> None:
            route.fulfill(status=200, body=SVG, headers=headers)

        context.route(url, fulfil)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.wait_for_load_state("load")
        return page, dialogs

    svg_type = {"content-type": "image/svg+xml", "content-disposition": "inline"}
    control, dialogs = run_svg_with(svg_type)  # the test can fail: without the headers it runs
    expect(control.locator("svg")).to_have_attribute("data-pwned", "1", timeout=TIMEOUT_MS)
    assert dialogs == [f"xss from {server.base_url.split('//')[1].split(':')[0]}"]

    page, dialogs = run_svg_with({**real, **svg_type})
    expect(page.locator("svg")).to_have_count(1)  # it rendered as an SVG document ...
    page.wait_for_timeout(500)  # ... whose script, had it run, would have run by now
    assert page.locator("svg").get_attribute("data-pwned") is None
    assert dialogs == []
    assert page.evaluate("window.origin") == "null"  # sandboxed: an opaque origin


def test_console_csp_refuses_inline_script_and_framing(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo]
) -> None:
    server, demo = gateway
    context = browser.new_context()
    response = context.request.get(server.url("/static/console.html"))
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"

    agent = Console.signed_in(context, server, demo.token)
    # Markup that reached the DOM could not run: the CSP refuses inline handlers.
    agent.page.evaluate(
        """() => new Promise(done => {
            document.addEventListener("securitypolicyviolation", done, {once: true});
            document.body.insertAdjacentHTML("beforeend",
                '<img id="probe" src="data:," onerror="window.__ran = 1">');
        })"""
    )
    assert agent.page.evaluate("window.__ran") is None
    assert any(e.startswith("csp: ") for e in agent.page.errors)  # type: ignore[attr-defined]

    # Another site framing the console gets nothing of it.
    framing = Widget(browser.new_context().new_page()).page
    framing.goto(site.page(f'<iframe id="c" src="{server.url("/console")}"></iframe>'))
    framing.wait_for_load_state("load")
    frame = framing.frame_locator("#c")
    expect(frame.locator("#token")).to_have_count(0)
    [child] = [f for f in framing.frames if f != framing.main_frame]
    assert child.url.startswith("chrome-error://")


def test_demo_page_works_under_its_policy(
    browser: Browser, gateway: tuple[GatewayProcess, Demo], tmp_path: Path
) -> None:
    server, _demo = gateway
    customer = Widget(browser.new_context().new_page())
    customer.goto(server.url("/demo"))
    customer.open()
    customer.send("Hello under a CSP")
    customer.expect_texts(["Hello under a CSP"])
    upload = tmp_path / "photo.png"
    upload.write_bytes(PNG)
    customer.page.set_input_files(".ig-file", str(upload))
    image = customer.page.locator(".ig-mine[data-id] .ig-image img")
    expect(image).to_have_js_property("naturalWidth", 2, timeout=TIMEOUT_MS)
    no_page_errors(customer.page)  # which includes every CSP refusal
