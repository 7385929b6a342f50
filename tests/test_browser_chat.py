"""A customer and an agent chat in two browser contexts: the widget on another site's page, the
agent console, and the gateway under uvicorn (restarted mid-chat in one test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser_helpers import (
    TIMEOUT_MS,
    Console,
    Demo,
    HostSite,
    Widget,
    agent_api,
    demo_gateway,
    no_page_errors,
    screenshot,
)
from tests.server_helpers import GatewayProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_customer_chats_with_agent_and_markup_stays_text(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo], tmp_path: Path
) -> None:
    server, demo = gateway
    customer = Widget.on_host_page(browser.new_context(), site, server, demo.inbox)
    customer.open()
    customer.send("Hi, my order has not arrived")
    customer.expect_texts(["Hi, my order has not arrived"])

    agent = Console.signed_in(browser.new_context(), server, demo.token)
    expect(agent.conversation(0).locator(".unread")).to_have_text("1")
    agent.open(0)
    agent.expect_texts(["Hi, my order has not arrived"])
    expect(agent.conversation(0).locator(".unread")).to_have_count(0)

    # The customer types: the agent sees it live.
    customer.page.type(".ig-input", "It w")
    expect(agent.page.locator("#typing")).to_be_visible(timeout=TIMEOUT_MS)
    customer.page.fill(".ig-input", "")

    hostile = '<img src=x onerror="window.__pwned=1"><b>bold</b>'
    agent.reply(hostile)
    agent.reply("Only agents see this note", private=True)
    agent.reply("Sorry about that, let me check.")
    customer.expect_texts(
        ["Hi, my order has not arrived", hostile, "Sorry about that, let me check."]
    )
    assert customer.page.locator(".ig-messages img").count() == 0
    assert customer.page.locator(".ig-messages b").count() == 0
    assert customer.page.evaluate("window.__pwned") is None
    assert agent.page.locator("#messages img").count() == 0
    assert agent.page.evaluate("window.__pwned") is None
    expect(agent.page.locator("#messages .private")).to_have_count(1)

    # Closed panel: a new agent message shows as an unread count on the bubble.
    customer.close()
    agent.reply("Found it: it ships tomorrow.")
    expect(customer.page.locator(".ig-badge")).to_have_text("1", timeout=TIMEOUT_MS)
    expect(customer.page.locator(".ig-launcher")).to_have_attribute(
        "aria-label", "Open chat, 1 unread"
    )
    customer.page.locator(".ig-launcher").focus()
    customer.page.keyboard.press("Enter")  # keyboard only
    expect(customer.page.locator(".ig-panel")).to_be_visible()
    expect(customer.page.locator(".ig-input")).to_be_focused()
    expect(customer.page.locator(".ig-badge")).to_be_hidden()
    customer.send("Great, thanks!")
    agent.expect_texts(
        [
            "Hi, my order has not arrived", hostile, "Only agents see this note",
            "Sorry about that, let me check.", "Found it: it ships tomorrow.", "Great, thanks!",
        ]
    )  # fmt: skip
    screenshot(customer.page, "widget-desktop", tmp_path)
    no_page_errors(customer.page, agent.page)


def test_reload_and_second_tab_keep_the_conversation(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo]
) -> None:
    server, demo = gateway
    context = browser.new_context()
    customer = Widget.on_host_page(context, site, server, demo.inbox)
    customer.open()
    customer.send("First question")
    customer.send("Second question")
    customer.expect_texts(["First question", "Second question"])
    conversation = _latest_conversation(server, demo)
    _agent_says(server, demo, conversation, "An answer")
    customer.expect_texts(["First question", "Second question", "An answer"])

    customer.reload()
    customer.open()
    customer.expect_texts(["First question", "Second question", "An answer"])

    # A second tab of the same browser: the same conversation, live, in both.
    other = Widget(context.new_page())
    other.goto(customer.page.url)
    other.open()
    other.expect_texts(["First question", "Second question", "An answer"])
    other.send("From the second tab")
    _agent_says(server, demo, conversation, "Seen in both tabs")
    expected = ["First question", "Second question", "An answer", "From the second tab",
                "Seen in both tabs"]  # fmt: skip
    customer.expect_texts(expected)
    other.expect_texts(expected)
    assert len(agent_api(server, demo, "GET", "/conversations?status=all")["data"]["payload"]) >= 1
    no_page_errors(customer.page, other.page)


def test_csat_from_the_widget_is_seen_in_the_console(
    browser: Browser, site: HostSite, gateway: tuple[GatewayProcess, Demo], tmp_path: Path
) -> None:
    server, demo = gateway
    customer = Widget.on_host_page(browser.new_context(), site, server, demo.inbox)
    customer.open()
    customer.send("Can you help with CSAT?")
    customer.expect_texts(["Can you help with CSAT?"])
    agent = Console.signed_in(browser.new_context(), server, demo.token)
    agent.open(0)  # the newest conversation is first
    agent.expect_texts(["Can you help with CSAT?"])
    agent.reply("Done, anything else?")
    customer.expect_texts(["Can you help with CSAT?", "Done, anything else?"])

    agent.page.click("#resolve")  # resolving sends the survey
    expect(agent.page.locator("#resolve")).to_have_text("Reopen")
    survey = customer.page.locator(".ig-csat")
    expect(survey).to_be_visible(timeout=TIMEOUT_MS)
    survey.get_by_role("button", name="Rating 4 of 5").click()
    survey.get_by_role("textbox", name="Comment").fill("Quick and kind <script>x</script>")
    survey.get_by_role("button", name="Submit rating").click()
    expect(customer.page.locator(".ig-csat-done")).to_have_text(
        "Thank you! You rated 4 of 5.", timeout=TIMEOUT_MS
    )

    expect(agent.page.locator("#messages .csat")).to_have_text(
        "Rating: 4/5 \u2014 \u201cQuick and kind <script>x</script>\u201d", timeout=TIMEOUT_MS
    )
    expect(agent.conversation(0).locator(".rating")).to_have_text("\u2605 4/5")
    screenshot(agent.page, "console", tmp_path)
    no_page_errors(customer.page, agent.page)


def test_gateway_restart_mid_chat_loses_and_doubles_nothing(
    browser: Browser, site: HostSite, tmp_path: Path
) -> None:
    with demo_gateway(tmp_path) as (server, demo):
        customer = Widget.on_host_page(browser.new_context(), site, server, demo.inbox)
        customer.open()
        customer.send("Before the restart")
        customer.expect_texts(["Before the restart"])
        agent = Console.signed_in(browser.new_context(), server, demo.token)
        agent.open(0)
        agent.reply("Agent before the restart")
        customer.expect_texts(["Before the restart", "Agent before the restart"])

        port = server.port
        assert server.kill() == -9  # a crash, not a goodbye
        expect(customer.page.locator(".ig-root")).to_have_attribute(
            "data-connection", "disconnected", timeout=TIMEOUT_MS
        )
        customer.send("Sent while the gateway was down")
        expect(customer.page.locator(".ig-message:not([data-id])")).to_have_count(1)

        server.start(port=port)
        # Published before either browser is back: they must get it from the event log.
        conversation = _latest_conversation(server, demo)
        _agent_says(server, demo, conversation, "Agent right after the restart")

        expected = {
            "Before the restart", "Agent before the restart", "Sent while the gateway was down",
            "Agent right after the restart",
        }  # fmt: skip
        expect(customer.page.locator(".ig-messages .ig-text")).to_have_count(4, timeout=30_000)
        expect(customer.page.locator(".ig-message:not([data-id])")).to_have_count(0)
        expect(agent.page.locator("#messages .text")).to_have_count(4, timeout=30_000)
        customer.page.wait_for_timeout(1500)  # late duplicates would show up by now
        assert sorted(customer.texts()) == sorted(expected)
        assert sorted(agent.texts()) == sorted(expected)
        stored = agent_api(server, demo, "GET", f"/conversations/{conversation}/messages")
        assert sorted(m["content"] for m in stored["payload"]) == sorted(expected)

        customer.reload()
        customer.open()
        assert sorted(customer.texts()) == sorted(expected)
        no_page_errors(customer.page, agent.page)


def _latest_conversation(server: GatewayProcess, demo: Demo) -> int:
    found = agent_api(server, demo, "GET", "/conversations?status=all")["data"]["payload"]
    return max(int(c["id"]) for c in found)


def _agent_says(server: GatewayProcess, demo: Demo, conversation: int, text: str) -> None:
    agent_api(
        server, demo, "POST", f"/conversations/{conversation}/messages", json={"content": text}
    )


def test_demo_page_carries_the_widget(
    browser: Browser, gateway: tuple[GatewayProcess, Demo]
) -> None:
    server, demo = gateway
    customer = Widget(browser.new_context().new_page())
    customer.goto(server.url("/"))  # redirects to /demo
    assert customer.page.url == server.url("/demo")
    assert customer.page.locator(f'script[data-inbox="{demo.inbox}"]').count() == 1
    customer.open()
    customer.send("Hello from the demo page")
    customer.expect_texts(["Hello from the demo page"])
    conversation = _latest_conversation(server, demo)
    stored = agent_api(server, demo, "GET", f"/conversations/{conversation}/messages")
    assert [m["content"] for m in stored["payload"]] == ["Hello from the demo page"]
    no_page_errors(customer.page)
