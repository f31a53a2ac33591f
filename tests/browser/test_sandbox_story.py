"""The whole product in the browser sandbox, clicked through as a newcomer would after `make run`.

Oscar registers his shop, Ada (the operator) approves it, Oscar publishes an offer with a photo, Mia finds
it on the map, reserves it, pays on the Stripe stand-in's checkout page in a new tab, and Oscar redeems her
pickup code. Every click is an Update the Telegram stand-in delivers to the gateway; every message checked
is one the workers sent to the stand-in's Bot API. Screenshots go to .marketbot/screenshots/ (or
MARKETBOT_SCREENSHOT_DIR); UPDATE_SCREENSHOTS=1 also refreshes the README's picture in docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from marketbot.harness import ROOT
from marketbot.sandbox.pictures import food_png
from tests.browser.conftest import CHROMIUM_ARGS, SCREENSHOTS, Sandbox

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

VENUE = (1.2790, 103.8480)  # Tanjong Pagar: typed into the location dialog
SHOP = "Oscar's Noodle House"
TITLE = "Curry noodle rescue"


class Chat:
    """One person's column in the page."""

    def __init__(self, page: Page, user_id: int) -> None:
        self.page = page
        self.root = page.locator(f"#pane-{user_id}")
        self.seen = 0  # the newest bot message id already expected

    def _incoming(self) -> list[tuple[int, str]]:
        rows = self.root.evaluate(
            "r => [...r.querySelectorAll('.message.incoming')]"
            ".map(m => [Number(m.dataset.messageId), m.innerText])"
        )
        return [(int(i), str(t)) for i, t in rows]

    def expect(self, fragment: str, timeout: float = 40) -> Locator:
        """Wait for a new bot message containing `fragment` (earlier new ones are skipped over)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message_id, text in self._incoming():
                if message_id > self.seen and fragment in text:
                    self.seen = message_id
                    return self.message(message_id)
            time.sleep(0.1)
        recent = [t[:70] for i, t in self._incoming() if i > self.seen]
        raise AssertionError(f"no new bot message with {fragment!r}; new ones: {recent}")

    def message(self, message_id: int) -> Locator:
        return self.root.locator(f'.message[data-message-id="{message_id}"]')

    def say(self, text: str) -> None:
        box = self.root.locator("input.text")
        box.fill(text)
        box.press("Enter")

    @staticmethod
    def press(message: Locator, label: str, *, exact: bool = False) -> None:
        message.get_by_role("button", name=label, exact=exact).first.click()

    def reply_button(self, label: str) -> None:
        self.root.locator(".reply-keyboard .kb-button", has_text=label).click()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def _share_location(page: Page, chat: Chat, button: str, where: tuple[float, float]) -> None:
    chat.reply_button(button)
    dialog = page.locator("#location-dialog")
    expect(dialog).to_be_visible()
    dialog.locator(".map").click(position={"x": 120, "y": 160})  # the map moves the pin and the numbers
    assert dialog.locator("input[name=latitude]").input_value() != f"{where[0]:.4f}"
    dialog.locator("input[name=latitude]").fill(f"{where[0]:.4f}")
    dialog.locator("input[name=longitude]").fill(f"{where[1]:.4f}")
    dialog.get_by_role("button", name="Send location").click()


def test_register_approve_publish_buy_pay_and_redeem_in_the_browser(
    browser: Browser, sandbox: Sandbox, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    outside: list[str] = []
    context.on(
        "request",
        lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else outside.append(r.url),
    )
    # A t.me link in a message would open Telegram on a phone; offline, answer it here instead.
    context.route("https://t.me/**", lambda route: route.fulfill(status=200, body="back to Telegram"))
    page = context.new_page()
    page.goto(sandbox.url)
    owner, mia, admin = Chat(page, 1001), Chat(page, 1002), Chat(page, 1000)
    expect(page.get_by_role("tab")).to_have_count(4)

    # Oscar registers his shop, sharing the venue pin and his phone through the reply keyboard's buttons
    owner.say("/start")
    Chat.press(owner.expect("Welcome"), "Sell surplus food")
    owner.expect("What is your business called?")
    owner.say(SHOP)
    Chat.press(owner.expect("What kind of business"), "Restaurant")
    owner.expect("pickup address")
    owner.say("45 Tanjong Pagar Road, Singapore 088463")
    owner.expect("Send the venue's location")
    _share_location(page, owner, "Send venue location", VENUE)
    owner.expect("Share a contact phone number")
    owner.reply_button("Share my phone number")
    page.locator("#contact-dialog").get_by_role("button", name="Share contact").click()
    owner.expect("Which timezone")
    owner.say("Asia/Singapore")
    Chat.press(owner.expect("Which currency"), "SGD")
    Chat.press(owner.expect("Is everything right?"), "Submit for verification")

    # Ada approves it from her chat
    Chat.press(admin.expect(SHOP), "Approve")
    owner.expect("is verified!")
    _shot(page, "1-registered-and-approved")

    # Oscar publishes an offer with a photo uploaded from a file
    picture = tmp_path / "noodles.png"
    picture.write_bytes(food_png("noodles", seed=7, scale=2))
    owner.say("/newoffer")
    owner.expect("Send a photo of the food")
    owner.root.get_by_role("button", name="Send a photo").click()
    page.locator("#photo-dialog input[type=file]").set_input_files(str(picture))
    page.locator("#photo-dialog").get_by_role("button", name="Send photo").click()
    owner.expect("Give the offer a short title")
    owner.say(TITLE)
    Chat.press(owner.expect("Describe it"), "Skip")
    owner.expect("Item 1")
    owner.say("Curry noodles")
    owner.expect("How many")
    owner.say("3")
    owner.expect("normal")
    owner.say("9.00")
    owner.expect("offer")
    owner.say("4.00")
    Chat.press(owner.expect("Add another item"), "Done with items")
    owner.expect("When can customers pick up")
    owner.say("tomorrow 18:00-20:30")
    Chat.press(owner.expect("dietary tags"), "Done", exact=True)
    card = owner.expect(TITLE)
    photo = card.locator(".photo img")
    expect(photo).to_be_visible()
    # The photo Oscar uploaded is the one on the card, served from the stand-in's copy of it
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 640
    Chat.press(owner.expect("Publish it?"), "Publish")
    owner.expect("is live!")
    _shot(page, "2-offer-published")

    # Mia finds it next to her on the map (among the demo city's offers) and reserves one
    mia.say("/find")
    mia.expect("Share your location")
    _share_location(page, mia, "Share my location", VENUE)
    listing = mia.expect(TITLE)
    assert "Marina Sushi Counter" in page.locator("#pane-1002").inner_text()  # the demo city is there too
    Chat.press(listing, TITLE)
    detail = mia.expect("Reserve")
    expect(detail.locator(".photo img")).to_be_visible()
    Chat.press(detail, "Reserve 1")
    pay = detail.locator("a.kb-button", has_text="Pay")
    expect(pay).to_be_visible(timeout=40_000)  # the same card, edited in place
    readme_picture = _shot(page, "3-customer-reserved")

    # She pays on the Stripe stand-in's checkout page, which opens in a new tab
    with context.expect_page() as opened:
        pay.click()
    checkout = opened.value
    checkout.wait_for_load_state()
    expect(checkout.get_by_role("heading")).to_contain_text("4.00 SGD")
    _shot(checkout, "4-stripe-checkout")
    checkout.get_by_role("button", name="Pay", exact=True).click()
    checkout.wait_for_url("**/sandbox/**")  # CHECKOUT_RETURN_URL: back to this page, not to t.me (offline)
    checkout.close()

    # Her pickup code arrives; Oscar hears of the order and redeems the code she shows him
    confirmation = mia.expect("Order confirmed", timeout=60)
    match = re.search(r"\b([A-Z0-9]{3}-[A-Z0-9]{3})\b", confirmation.inner_text())
    assert match, confirmation.inner_text()
    code = match.group(1)
    expect(confirmation.locator(".photo img")).to_be_visible()  # the QR code the worker drew and uploaded
    owner.expect(f"New order {code}")
    owner.say(code)
    owner.expect("redeemed: hand")
    mia.expect("Pickup confirmed")
    _shot(page, "5-redeemed")
    if os.environ.get("UPDATE_SCREENSHOTS"):
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(readme_picture, target / "sandbox.png")

    assert [url for url in outside if not url.startswith("https://t.me/")] == []
    context.close()


def test_on_a_phone_one_chat_shows_at_a_time_and_tabs_switch_by_keyboard(
    browser: Browser, sandbox: Sandbox
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{sandbox.url}?as=1003")
    leo, ada = page.locator("#pane-1003"), page.locator("#pane-1000")
    expect(leo).to_be_visible()
    expect(ada).to_be_hidden()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"

    # Keyboard only: from Leo's tab, the arrow keys move to the next person's chat
    page.get_by_role("tab", name=re.compile("Leo")).focus()
    page.keyboard.press("ArrowRight")
    expect(ada).to_be_visible()
    expect(leo).to_be_hidden()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the layout toggle (hidden on phones) into Ada's chat
    ada.locator("input.text").fill("/help")
    ada.locator("input.text").press("Enter")
    expect(ada.locator(".message.incoming").last).to_contain_text("/start", timeout=40_000)
    _shot(page, "6-phone")
    context.close()
