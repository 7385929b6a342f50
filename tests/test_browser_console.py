"""The agent console with more than one page of everything: conversations beyond the first 25,
messages beyond the latest 20, search by contact name and e-mail, and the status filter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, expect

from tests.browser_helpers import (
    TIMEOUT_MS,
    Console,
    Customer,
    Demo,
    demo_gateway,
    no_page_errors,
)
from tests.server_helpers import GatewayProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CUSTOMERS = 30  # more than the 25 conversations of one page
THREAD = 45  # messages in the oldest conversation: more than two pages of 20
RESOLVED = (12, 15, 18)  # customers whose conversation is resolved


@dataclass(frozen=True)
class Seeded:
    server: GatewayProcess
    demo: Demo
    oldest: int  # the conversation with the long thread, the least recently active


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with demo_gateway(tmp_path_factory.mktemp("browser-console")) as (server, demo):
        olive = Customer(server, demo, "Olive Oldest", "olive@example.com")
        for n in range(1, THREAD + 1):
            olive.says(f"Message {n:02d}")
        for n in range(2, CUSTOMERS + 1):
            customer = Customer(server, demo, f"Customer {n:02d}", f"customer{n:02d}@example.com")
            customer.says(f"Hello from customer {n:02d}")
            if n in RESOLVED:
                customer.given_status("resolved")
            customer.close()
        grace = Customer(server, demo, "Grace Hopper", "amazing.grace@navy.example")
        grace.says("My compiler cannot find the bug")
        grace.given_status("pending")
        grace.close()
        olive.close()
        yield Seeded(server, demo, olive.conversation)


def test_console_reaches_the_oldest_conversation_and_message(
    browser: Browser, seeded: Seeded
) -> None:
    agent = Console.signed_in(browser.new_context(), seeded.server, seeded.demo.token)
    page = agent.page
    agent.wait_listed()
    expect(agent.names).to_have_count(25)
    expect(agent.names.filter(has_text="Olive Oldest")).to_have_count(0)
    more = page.locator("#more-conversations")
    expect(more).to_be_visible()
    more.click()
    agent.wait_listed()
    expect(agent.names).to_have_count(CUSTOMERS + 1)  # every customer and Grace
    expect(agent.names.last).to_have_text("Olive Oldest")  # the least recently active
    expect(more).to_be_hidden()  # nothing further

    agent.names.last.click()
    expected = [f"Message {n:02d}" for n in range(1, THREAD + 1)]
    agent.expect_texts(expected[-20:])
    newest = page.locator("#messages .text", has_text="Message 45")
    expect(newest).to_be_in_viewport()
    older = page.locator("#older")
    expect(older).to_be_visible()
    # The button (without scrolling to it): the older page goes on top, the view stays put.
    older.dispatch_event("click")
    agent.expect_texts(expected[-40:])
    expect(newest).to_be_in_viewport()
    # Scrolling back to the top loads the next older page, and the view stays on what was the
    # oldest message instead of jumping to either end.
    page.locator("#scroller").evaluate("el => { el.scrollTop = 0; }")
    agent.expect_texts(expected)
    expect(page.locator("#messages .text", has_text="Message 06")).to_be_in_viewport()
    expect(older).to_be_hidden()  # Message 01 is the first one

    # A reply still lands at the bottom, after the pages loaded above.
    agent.reply("We are on it, Olive.")
    agent.expect_texts([*expected, "We are on it, Olive."])
    no_page_errors(page)


def test_console_search_by_name_and_email_and_status_filter(
    browser: Browser, seeded: Seeded
) -> None:
    agent = Console.signed_in(browser.new_context(), seeded.server, seeded.demo.token)
    page = agent.page
    agent.wait_listed()
    expect(agent.names).to_have_count(25)

    page.fill("#search", "hopper")  # as the agent types, without Enter
    expect(agent.names).to_have_text(["Grace Hopper"], timeout=TIMEOUT_MS)
    agent.search("")
    expect(agent.names).to_have_count(25)
    agent.search("NAVY.example")  # only her e-mail has it; case does not matter
    expect(agent.names).to_have_text(["Grace Hopper"])
    expect(page.locator("#conversations .email")).to_have_text(["amazing.grace@navy.example"])
    agent.search("customer1")
    assert sorted(agent.names.all_inner_texts()) == [f"Customer {n}" for n in range(10, 20)]
    agent.search("nobody at all")
    expect(agent.names).to_have_count(0)
    expect(page.locator("#list-note")).to_have_text(
        "No conversation of a contact matching \u201cnobody at all\u201d."
    )

    # The status filter, alone and on a search.
    agent.search("")
    agent.filter_status("pending")
    expect(agent.names).to_have_text(["Grace Hopper"])
    agent.filter_status("resolved")
    expect(agent.names).to_have_count(len(RESOLVED))
    assert sorted(agent.names.all_inner_texts()) == [f"Customer {n}" for n in RESOLVED]
    agent.filter_status("open")
    expect(agent.names).to_have_count(25)
    expect(page.locator("#conversations .status")).to_have_text(["open"] * 25)
    page.click("#more-conversations")
    agent.wait_listed()
    open_count = CUSTOMERS + 1 - len(RESOLVED) - 1  # all but the resolved ones and Grace's
    expect(agent.names).to_have_count(open_count)
    agent.search("customer1")
    expect(agent.names).to_have_count(10 - len(RESOLVED))
    agent.filter_status("resolved")
    assert sorted(agent.names.all_inner_texts()) == [f"Customer {n}" for n in RESOLVED]

    # Resolving from the console moves a conversation out of an "open" list at once.
    agent.filter_status("open")
    agent.search("hello from")  # no contact is called that: message text is not searched
    expect(agent.names).to_have_count(0)
    agent.search("")
    first = agent.names.first.inner_text()
    agent.names.first.click()
    page.click("#resolve")
    expect(agent.names.filter(has_text=first)).to_have_count(0, timeout=TIMEOUT_MS)
    agent.filter_status("all")
    expect(agent.names.filter(has_text=first)).to_have_count(1)
    no_page_errors(page)
