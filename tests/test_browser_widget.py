"""The widget's features in Chromium: phone width, pre-chat form, offline notice, the message
types agents send, attachments, identity verification and the JavaScript API."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser_helpers import (
    IMAGES_LOADED,
    TIMEOUT_MS,
    Console,
    Demo,
    HostSite,
    Widget,
    agent_api,
    no_page_errors,
    screenshot,
    wait_until,
)
from tests.server_helpers import GatewayProcess, hmac_hex

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# A 2x2 PNG: the smallest real image to upload.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)


def _new_inbox(server: GatewayProcess, demo: Demo, **body: Any) -> dict[str, Any]:
    inbox: dict[str, Any] = agent_api(server, demo, "POST", "/inboxes", json=body)
    return inbox


def _conversations(server: GatewayProcess, demo: Demo) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = agent_api(server, demo, "GET", "/conversations?status=all")[
        "data"
    ]["payload"]
    return found


def test_phone_width_pre_chat_form_and_offline_notice(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo], tmp_path: Path
) -> None:
    server, demo = gateway
    closed = [{"day_of_week": d, "closed_all_day": True} for d in range(7)]
    fields = [
        {"name": "fullName", "label": "Your name", "required": True},
        {"name": "emailAddress", "label": "Email", "required": True},
    ]
    pre_chat = {"pre_chat_message": "Who are we talking to?", "pre_chat_fields": fields}
    inbox = _new_inbox(
        server,
        demo,
        name="Shop help",
        working_hours_enabled=True,
        working_hours=closed,
        out_of_office_message="We are closed right now; we answer in the morning.",
        channel={
            "type": "api",
            "additional_attributes": {
                "pre_chat_form_enabled": True,
                "pre_chat_form_options": pre_chat,
            },
        },
    )
    phone = browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True)
    customer = Widget.on_host_page(phone, site, server, inbox["inbox_identifier"])
    customer.open()
    page = customer.page
    box = page.locator(".ig-panel").bounding_box()
    assert box is not None  # full screen (give or take the opening animation's pixel)
    assert (round(box["width"]), round(box["height"])) == (390, 780)
    expect(page.locator(".ig-notice")).to_have_text(
        "We are closed right now; we answer in the morning."
    )
    expect(page.locator(".ig-title")).to_have_text("Shop help")
    form = page.locator(".ig-prechat")
    expect(form).to_be_visible()
    expect(page.locator(".ig-composer")).to_be_hidden()
    form.get_by_role("button", name="Start chat").click()  # required fields are empty
    expect(page.locator(".ig-composer")).to_be_hidden()
    form.get_by_label("Your name").fill("Grace Hopper")
    form.get_by_label("Email").fill("grace@example.com")
    form.get_by_role("button", name="Start chat").click()
    expect(page.locator(".ig-composer")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator(".ig-input")).to_be_focused()
    customer.send("Is the shop open on Sunday?")
    customer.expect_texts(["Is the shop open on Sunday?"])
    screenshot(page, "widget-phone", tmp_path)

    mine = [c for c in _conversations(server, demo) if c["inbox_id"] == inbox["id"]]
    assert [c["meta"]["sender"]["email"] for c in mine] == ["grace@example.com"]
    assert mine[0]["meta"]["sender"]["name"] == "Grace Hopper"
    no_page_errors(page)


def test_agent_message_types_and_attachments(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo], tmp_path: Path
) -> None:
    server, demo = gateway
    customer = Widget.on_host_page(browser.new_context(), site, server, demo.inbox)
    customer.open()
    customer.send("What plans do you have?")
    customer.expect_texts(["What plans do you have?"])
    conversation = max(c["id"] for c in _conversations(server, demo))
    path = f"/conversations/{conversation}/messages"

    def send(content: str, content_type: str, items: list[dict[str, Any]]) -> int:
        body = {"content": content, "content_type": content_type,
                "content_attributes": {"items": items}}  # fmt: skip
        message: dict[str, Any] = agent_api(server, demo, "POST", path, json=body)
        return int(message["id"])

    select = send(
        "Pick a plan",
        "input_select",
        [{"title": "Basic", "value": "basic"}, {"title": "Pro", "value": "pro"}],
    )
    pro = {
        "title": "Pro",
        "description": "Everything",
        "media_url": "javascript:alert(1)",
        "actions": [
            {"type": "link", "text": "Details", "uri": "https://example.com/pro"},
            {"type": "link", "text": "Evil", "uri": "javascript:alert(1)"},
        ],
    }
    send("Our plans", "cards", [pro])
    sizes = [{"label": "1-10", "value": "small"}, {"label": "11+", "value": "large"}]
    form = send(
        "Tell us more",
        "form",
        [
            {"name": "company", "label": "Company", "type": "text"},
            {"name": "size", "label": "Team size", "type": "select", "options": sizes},
        ],
    )
    faq = {"title": "Pricing FAQ", "description": "All about it", "link": "https://example.com/faq"}
    send("Read this", "article", [faq])

    page = customer.page
    options = page.locator(f'.ig-message[data-id="{select}"] .ig-option')
    expect(options).to_have_text(["Basic", "Pro"], timeout=TIMEOUT_MS)
    options.nth(1).click()
    expect(page.locator(f'.ig-message[data-id="{select}"] .ig-chosen')).to_have_text("Pro")
    expect(page.locator(".ig-card a")).to_have_count(1)  # the javascript: link is dropped
    expect(page.locator(".ig-card a")).to_have_attribute("href", "https://example.com/pro")
    assert page.locator(".ig-card img").count() == 0
    expect(page.locator(".ig-articles a")).to_have_attribute("href", "https://example.com/faq")
    filled = page.locator(f'.ig-message[data-id="{form}"] form')
    filled.get_by_label("Company").fill("Acme")
    filled.get_by_label("Team size").select_option("large")
    filled.get_by_role("button", name="Submit").click()
    expect(filled.get_by_label("Company")).to_be_disabled(timeout=TIMEOUT_MS)

    upload = tmp_path / "receipt.png"
    upload.write_bytes(PNG)
    page.set_input_files(".ig-file", str(upload))
    image = page.locator(".ig-mine[data-id] .ig-image img")
    expect(image).to_have_count(1, timeout=TIMEOUT_MS)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 2  # served, decoded

    screenshot(page, "widget-messages", tmp_path)

    stored = {m["id"]: m for m in agent_api(server, demo, "GET", path)["payload"]}
    assert stored[select]["content_attributes"]["submitted_values"] == [
        {"title": "Pro", "value": "pro"}
    ]
    answers = stored[form]["content_attributes"]["submitted_values"]
    assert [(v["name"], v["value"]) for v in answers] == [("company", "Acme"), ("size", "large")]
    agent = Console.signed_in(browser.new_context(), server, demo.token)
    agent.open(0)
    expect(agent.page.locator("#messages img")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(agent.page.locator("#messages .submitted").first).to_have_text("Answered: Pro = pro")
    no_page_errors(page, agent.page)


def test_identity_verification_and_javascript_api(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo]
) -> None:
    server, demo = gateway
    inbox = _new_inbox(
        server, demo, name="Verified", channel={"type": "api", "hmac_mandatory": True}
    )
    key, identifier = inbox["hmac_token"], inbox["inbox_identifier"]
    settings = {"identifier": "user-42", "identifier_hash": hmac_hex(key, "user-42"),
                "name": "Ada", "email": "ada@example.com"}  # fmt: skip
    customer = Widget.on_host_page(browser.new_context(), site, server, identifier, settings)
    page = customer.page
    page.evaluate("""() => {
        window.seen = [];
        for (const name of ["open", "close", "message", "unread", "error"])
            InboxGate.on(name, () => window.seen.push(name));
    }""")
    page.evaluate("InboxGate.open()")
    customer.send("Hello as Ada")
    customer.expect_texts(["Hello as Ada"])
    page.evaluate("InboxGate.close()")
    expect(page.locator(".ig-panel")).to_be_hidden()

    def contact_of_latest() -> dict[str, Any]:
        mine = [c for c in _conversations(server, demo) if c["inbox_id"] == inbox["id"]]
        sender: dict[str, Any] = max(mine, key=lambda c: c["id"])["meta"]["sender"]
        return sender

    assert contact_of_latest()["identifier"] == "user-42"

    # reset() forgets the visitor; setUser() with a bad hash is refused (401), a good one works.
    page.evaluate("InboxGate.reset()")
    expect(customer.messages).to_have_count(0)
    page.evaluate("InboxGate.setUser('user-43', {identifier_hash: 'bad', name: 'Eve'})")
    wait_until(page, "window.seen.includes('error')")
    page.evaluate("InboxGate.reset()")
    good = hmac_hex(key, "user-43")
    page.evaluate(f"InboxGate.setUser('user-43', {{identifier_hash: '{good}', name: 'Bob'}})")
    page.evaluate("InboxGate.open()")
    customer.send("Hello as Bob")
    customer.expect_texts(["Hello as Bob"])
    assert contact_of_latest()["identifier"] == "user-43"
    seen = page.evaluate("window.seen")
    assert (seen.count("open"), seen.count("close"), seen.count("error")) == (2, 1, 1)
    no_page_errors(page)


def _without_length(response: Any) -> dict[str, str]:
    """The headers of a fetched response, for a fulfilled one with another body."""
    return {k: v for k, v in response.headers.items() if k.lower() != "content-length"}


def test_missing_urls_show_no_image_and_request_nothing(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo], tmp_path: Path
) -> None:
    """Cards without a media_url, a link action without a uri, an article without a link, and
    attachments whose data_url or thumb_url is missing: no <img> without a picture behind it,
    and no request to the gateway's "/undefined" (or to its root, for an empty URL)."""
    server, demo = gateway
    customer = Widget.on_host_page(browser.new_context(), site, server, demo.inbox)
    page = customer.page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    customer.open()
    customer.send("Show me the plans")
    customer.expect_texts(["Show me the plans"])
    upload = tmp_path / "receipt.png"
    upload.write_bytes(PNG)
    page.set_input_files(".ig-file", str(upload))
    expect(page.locator(".ig-mine[data-id] .ig-image img")).to_have_count(1, timeout=TIMEOUT_MS)
    conversation = max(c["id"] for c in _conversations(server, demo))
    path = f"/conversations/{conversation}/messages"
    choose = [{"type": "postback", "text": "Choose", "payload": "plan"}]
    cards = [  # Chatwoot requires actions on every card
        {"title": "Basic", "description": "Empty media_url", "media_url": "", "actions": choose},
        {"title": "Pro", "description": "No media_url", "actions": [{"type": "link", "text": "?"}]},
        {"title": "Team", "description": "Blank media_url", "media_url": "  ", "actions": choose},
    ]
    article = {"title": "No link", "description": "Nowhere"}
    for body in (
        {"content": "Our plans", "content_type": "cards", "content_attributes": {"items": cards}},
        {"content": "Read this", "content_type": "article",
         "content_attributes": {"items": [article]}},
    ):  # fmt: skip
        agent_api(server, demo, "POST", path, json=body)
    expect(page.locator(".ig-card")).to_have_count(3, timeout=TIMEOUT_MS)

    # What another server (or an older gateway) may send: the picture without its thumb_url,
    # and attachments with no URL at all. The widget reads them on its next load.
    def strip_urls(route: Any) -> None:
        response = route.fetch()
        listed = response.json()
        for conv in listed:
            for message in conv.get("messages", []):
                if message.get("attachments"):
                    for attachment in message["attachments"]:
                        attachment.pop("thumb_url", None)
                    message["attachments"] += [{"file_type": "image"}, {"file_type": "file"}]
        route.fulfill(response=response, headers=_without_length(response), json=listed)

    page.route("**/contacts/*/conversations", strip_urls)
    customer.reload()
    customer.open()
    expect(page.locator(".ig-card")).to_have_count(3, timeout=TIMEOUT_MS)
    assert page.locator(".ig-card img").count() == 0
    expect(page.locator(".ig-card a")).to_have_count(0)  # the link without a uri
    expect(page.locator(".ig-card button")).to_have_text(["Choose", "Choose"])
    expect(page.locator(".ig-articles a")).to_have_count(0)
    expect(page.locator(".ig-articles strong")).to_have_text("No link")
    image = page.locator(".ig-messages img")
    expect(image).to_have_count(1)  # the real picture, through its data_url
    wait_until(page, IMAGES_LOADED)
    assert image.evaluate("img => img.naturalWidth") == 2
    root = server.url("/")
    assert [u for u in requested if "undefined" in u or u == root] == []

    # The console: an agent-side message whose attachments have no URL.
    agent = Console.signed_in(browser.new_context(), server, demo.token)
    agent_requests: list[str] = []
    agent.page.on("request", lambda request: agent_requests.append(request.url))

    def add_urlless(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        last = body["payload"][-1]
        files = [{"file_type": "image"}, {"file_type": "file", "data_url": ""}]
        body["payload"].append(
            {
                **last,
                "id": last["id"] + 1000,
                "content": "Files without links",
                "attachments": files,
            }
        )
        route.fulfill(response=response, headers=_without_length(response), json=body)

    agent.page.route(f"**/conversations/{conversation}/messages", add_urlless)
    agent.page.locator(f'#conversations .conversation[data-id="{conversation}"]').click()
    expect(agent.page.locator("#messages .text").last).to_have_text(
        "Files without links", timeout=TIMEOUT_MS
    )
    expect(agent.page.locator("#messages img")).to_have_count(1)  # the real picture
    wait_until(agent.page, IMAGES_LOADED)
    broken = "Array.from(document.images).filter(i => !i.naturalWidth).length"
    assert agent.page.evaluate(broken) == 0
    assert [u for u in agent_requests if "undefined" in u or u == root] == []
    no_page_errors(page, agent.page)
