"""Refresh the README's screenshots: ``python -m tests.screenshots`` (``--out DIR`` to write
elsewhere than ``docs/screenshots``).

It runs ``inboxgate serve --demo`` in a temporary directory, drives Debian's Chromium
(``/usr/bin/chromium``) as the browser tests do, seeds an ordinary support conversation (a
customer asks about a late order, an agent answers and resolves, the customer rates the chat) and
a few others, and takes the four pictures the README shows: widget-desktop, widget-phone,
widget-messages and console. The test suite never writes there (tests use ``tmp_path``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.browser_helpers import (
    CHROMIUM,
    IMAGES_LOADED,
    TIMEOUT_MS,
    Console,
    Customer,
    Demo,
    HostSite,
    Widget,
    agent_api,
    demo_gateway,
    launch_chromium,
    no_page_errors,
    screenshot,
    wait_until,
)
from tests.server_helpers import GatewayProcess, hmac_hex

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
NAMES = ("widget-desktop", "widget-phone", "widget-messages", "console")
SHOP = "Northwind Running"

SHOP_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{shop}</title>
<style>
body {{ margin: 0; font: 16px/1.5 Georgia, serif; color: #1f2937; background: #fafaf9; }}
header {{ padding: 18px 40px; background: #14532d; color: #fff; font: 700 22px system-ui; }}
main {{ padding: 32px 40px; max-width: 560px; }}
h1 {{ font: 700 30px system-ui; margin: 0 0 8px; }}
.price {{ font: 700 22px system-ui; color: #14532d; }}
</style></head>
<body><header>{shop}</header><main><h1>Cloud Runner 3</h1>
<p class="price">&pound;120</p>
<p>A light, cushioned road shoe for everyday miles. Free delivery and 60-day returns.</p>
</main>
<script>window.inboxgateSettings = {settings};</script>
<script src="{gateway}/static/widget.js" data-inbox="{inbox}" async></script></body></html>"""

SHOE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 64" width="240" height="64">
<rect width="240" height="64" fill="#dcfce7"/>
<path d="M50 46 C56 24 76 22 92 25 C106 28 112 16 122 19 C134 23 150 38 180 40 C190 41 190 52
180 53 L58 53 C50 53 48 50 50 46 Z" fill="#166534"/>
<rect x="48" y="52" width="136" height="6" rx="3" fill="#f5f5f4"/></svg>"""


def _shop_page(site: HostSite, server: GatewayProcess, demo: Demo, settings: dict[str, Any]) -> str:
    return site.page(
        SHOP_PAGE.format(
            shop=SHOP, settings=json.dumps(settings), gateway=server.base_url, inbox=demo.inbox
        )
    )


def _visitor(demo: Demo, identifier: str, name: str, email: str) -> dict[str, Any]:
    """The widget's settings for a signed-in shopper (identity verified with the inbox's HMAC
    key, as the shop's backend would compute it)."""
    signed = hmac_hex(demo.hmac_token, identifier)
    return {"identifier": identifier, "identifier_hash": signed, "name": name, "email": email}


def _reply(server: GatewayProcess, demo: Demo, conversation: int, body: dict[str, Any]) -> int:
    path = f"/conversations/{conversation}/messages"
    message: dict[str, Any] = agent_api(server, demo, "POST", path, json=body)
    return int(message["id"])


def _latest_conversation(server: GatewayProcess, demo: Demo) -> int:
    found = agent_api(server, demo, "GET", "/conversations?status=all")["data"]["payload"]
    return max(int(c["id"]) for c in found)


def seed_other_customers(server: GatewayProcess, demo: Demo) -> None:
    """Conversations that fill the console's list around the one in the pictures."""
    liam = Customer(server, demo, "Liam Chen", "liam.chen@example.com")
    liam.says("Can I still change the delivery address on order #10477?")
    _reply(server, demo, liam.conversation, {"content": "Done: it now goes to your office."})
    liam.given_status("resolved")
    noah = Customer(server, demo, "Noah Williams", "noah.w@example.com")
    noah.says("Is there a student discount?")
    noah.given_status("pending")
    sofia = Customer(server, demo, "Sofia Rossi", "sofia.rossi@example.com")
    sofia.says("Do you have the Trail Runner 2 in size 39?")
    for customer in (liam, noah, sofia):
        customer.close()


def order_question(
    browser: Browser, site: HostSite, server: GatewayProcess, demo: Demo, out: Path
) -> None:
    """widget-desktop and console: a late order, answered, resolved and rated."""
    settings = _visitor(demo, "customer-4821", "Maya Patel", "maya.patel@example.com")
    customer = Widget(browser.new_context().new_page())
    customer.goto(_shop_page(site, server, demo, settings))
    customer.open()
    asked = (
        "Hi! I ordered the Cloud Runner 3 last week (order #10482), but the tracking hasn't "
        "moved since Monday. Any news?"
    )
    customer.send(asked)
    customer.expect_texts([asked])

    agent = Console.signed_in(browser.new_context(), server, demo.token)
    agent.page.locator("#conversations .conversation", has_text="Maya Patel").click()
    agent.expect_texts([asked])
    answer = (
        "Hi Maya, sorry for the wait! Your parcel was held at our Leeds depot after a scanning "
        "error. It is on its way again and will reach you on Thursday."
    )
    agent.reply(answer)
    customer.expect_texts([asked, answer])
    thanks = "Perfect, thanks for checking!"
    customer.send(thanks)
    bye = "You're welcome! I'll close this chat; just write again if anything comes up."
    agent.expect_texts([asked, answer, thanks])
    agent.reply(bye)
    customer.expect_texts([asked, answer, thanks, bye])

    agent.page.click("#resolve")  # sends the CSAT survey
    survey = customer.page.locator(".ig-csat")
    expect(survey).to_be_visible(timeout=TIMEOUT_MS)
    survey.get_by_role("button", name="Rating 5 of 5").click()
    comment = survey.get_by_role("textbox", name="Comment")
    comment.fill("Quick and friendly, thank you!")
    comment.blur()
    customer.page.locator(".ig-messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    screenshot(customer.page, "widget-desktop", out)

    survey.get_by_role("button", name="Submit rating").click()
    expect(customer.page.locator(".ig-csat-done")).to_be_visible(timeout=TIMEOUT_MS)
    expect(agent.page.locator("#messages .csat")).to_contain_text("5/5", timeout=TIMEOUT_MS)
    agent.page.locator("#reply-text").blur()
    screenshot(agent.page, "console", out)
    no_page_errors(customer.page, agent.page)


def shipping_question_on_a_phone(
    browser: Browser, site: HostSite, server: GatewayProcess, demo: Demo, out: Path
) -> None:
    phone = browser.new_context(viewport={"width": 390, "height": 780}, is_mobile=True)
    customer = Widget(phone.new_page())
    settings = _visitor(demo, "customer-5170", "Aoife Byrne", "aoife.byrne@example.ie")
    customer.goto(_shop_page(site, server, demo, settings))
    customer.open()
    question = "Do you ship to Ireland?"
    customer.send(question)
    customer.expect_texts([question])
    answer = (
        "We do! Delivery to Ireland takes 2-3 working days and is free on orders over \u20ac60."
    )
    _reply(server, demo, _latest_conversation(server, demo), {"content": answer})
    customer.expect_texts([question, answer])
    follow_up = "Great, and returns are free too?"
    customer.send(follow_up)
    customer.expect_texts([question, answer, follow_up])
    returns = "Yes, returns are free within 60 days: there's a prepaid label in the box."
    _reply(server, demo, _latest_conversation(server, demo), {"content": returns})
    customer.expect_texts([question, answer, follow_up, returns])
    customer.page.locator(".ig-input").blur()
    screenshot(customer.page, "widget-phone", out)
    no_page_errors(customer.page)


def choosing_a_shoe(
    browser: Browser, site: HostSite, server: GatewayProcess, demo: Demo, out: Path
) -> None:
    """widget-messages: buttons, a card and an article from the agent (the form, the fourth
    type, would not fit in the same picture)."""
    customer = Widget(browser.new_context().new_page())
    settings = _visitor(demo, "customer-3306", "Alex Morgan", "alex.morgan@example.com")
    customer.goto(_shop_page(site, server, demo, settings))
    customer.open()
    customer.send("I'm looking for new running shoes.")
    customer.expect_texts(["I'm looking for new running shoes."])
    conversation = _latest_conversation(server, demo)
    terrain = [{"title": t, "value": t.lower()} for t in ("Road", "Trail", "Track")]
    _reply(server, demo, conversation, {"content": "Where do you run most?",
           "content_type": "input_select", "content_attributes": {"items": terrain}})  # fmt: skip
    page = customer.page
    page.locator(".ig-option", has_text="Trail").click()
    expect(page.locator(".ig-chosen")).to_have_text("Trail", timeout=TIMEOUT_MS)

    image = site.page(SHOE_SVG, "image/svg+xml")
    product = site.page("<!doctype html><title>Trail Runner 2</title>")
    view = [{"type": "link", "text": "View", "uri": product}]
    card = {"title": "Trail Runner 2", "description": "Grippy and light, \u00a3130",
            "media_url": image, "actions": view}  # fmt: skip
    _reply(server, demo, conversation, {"content": "Then I'd try this one first:",
           "content_type": "cards", "content_attributes": {"items": [card]}})  # fmt: skip
    guide = site.page("<!doctype html><title>Sizing guide</title>")
    article = {"title": "Finding your shoe size", "description": "Measure in the evening.",
               "link": guide}  # fmt: skip
    _reply(server, demo, conversation, {"content": "And our sizing guide:",
           "content_type": "article", "content_attributes": {"items": [article]}})  # fmt: skip
    expect(page.locator(".ig-articles a")).to_have_count(1, timeout=TIMEOUT_MS)
    wait_until(page, IMAGES_LOADED)
    page.locator(".ig-input").blur()
    # From the buttons down: the three message types in one picture.
    page.locator(".ig-message[data-type=input_select]").evaluate(
        "el => { el.parentNode.scrollTop = el.offsetTop - el.parentNode.offsetTop - 8; }"
    )
    screenshot(page, "widget-messages", out)
    no_page_errors(page)


def refresh(out: Path) -> list[Path]:
    with (
        tempfile.TemporaryDirectory(prefix="inboxgate-screenshots-") as tmp,
        launch_chromium() as browser,
        HostSite() as site,
        demo_gateway(Path(tmp)) as (server, demo),
    ):
        agent_api(server, demo, "PATCH", f"/inboxes/{demo.inbox_id}", json={"name": SHOP})
        sam = server.cli(
            "user", "create", "--account", str(demo.account_id), "--email",
            "sam@northwind.example", "--name", "Sam Taylor", "--role", "administrator",
        )  # fmt: skip
        # Sam answers everything: the demo's "Demo Agent" would look like a placeholder.
        demo = dataclasses.replace(demo, token=sam["access_token"])
        seed_other_customers(server, demo)
        choosing_a_shoe(browser, site, server, demo, out)
        shipping_question_on_a_phone(browser, site, server, demo, out)
        order_question(browser, site, server, demo, out)
    return [out / f"{name}.png" for name in NAMES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=DOCS, help="where to write the PNGs")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-color-emoji")
        return 1
    for path in refresh(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
