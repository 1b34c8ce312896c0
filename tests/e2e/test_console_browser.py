"""The web console in a real browser (Debian's Chromium via Playwright) against the real local stack: sign in,
connect both providers through the form, see a signed inbound message arrive without a reload, answer it and
watch its ticks advance, and see nothing of another tenant. Elements are found by role and accessible name only,
as a screen reader finds them (docs/console.md lists the names). Any browser console error a test did not cause
on purpose fails it.

Timeouts are generous bounds for a loaded machine, not the product's figures: the console polls every 3 s, and
``make bench`` measures how soon a message shows (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import expect

from local import REPO_ROOT
from local.browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    Console,
    ConsoleErrors,
    User,
    chromium,
    create_user,
    random_phone_number_id,
    random_twilio_number,
)
from local.console import DEMO_EMAIL, DEMO_PASSWORD, DEMO_TENANT
from local.say import meta_notification, post_meta, post_twilio, twilio_form
from local.testing import LocalStackClient, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

SHOWS = 15_000  # ms: a new message or status on screen (the console polls every 3 s)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert (REPO_ROOT / "web" / "dist" / "index.html").is_file(), "the console is not built: run `make deps`"
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: `make deps` installs Debian's chromium"
    with chromium() as launched:
        yield launched


@pytest.fixture
def errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture
def console(browser: Any, local_stack: LocalStackClient, errors: ConsoleErrors) -> Iterator[Console]:
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=local_stack.base_url)
    page = context.new_page()
    errors.attach(page)
    yield Console(page, local_stack.base_url)
    context.close()
    assert errors.unexpected() == [], "browser console errors"


@pytest.fixture
def admin(local_stack: LocalStackClient) -> User:
    return create_user(local_stack.base_url)


def twilio_channel(console: Console) -> dict[str, str]:
    channel = {"name": "Support", "number": random_twilio_number(), "account_sid": "AC" + secrets.token_hex(16),
               "auth_token": "web-twilio-token-" + secrets.token_hex(8)}
    console.connect_twilio(channel["name"], channel["number"], channel["account_sid"], channel["auth_token"])
    return channel


def customer_writes(base_url: str, channel: dict[str, str], sender: str, text: str, name: str = "Ana") -> None:
    form = twilio_form(to=channel["number"], account_sid=channel["account_sid"], sender=sender, text=text, name=name)
    response = post_twilio(f"{base_url}/webhooks/twilio", channel["auth_token"], form)
    assert response.status_code == 200, response.text


TICKS = ["queued", "sent", "delivered", "read"]


def watch_statuses(page: Any, text: str) -> None:
    """Record every status word the message showing ``text`` goes through (``window.__statuses``), as it renders:
    the sandbox's callbacks follow each other within a second, faster than any assertion could catch them."""
    page.evaluate("""text => {
        window.__statuses = [];
        const record = () => {
            const bubble = [...document.querySelectorAll('[role=log] li')].find(li => li.textContent.includes(text));
            const status = bubble?.querySelector('.status');  // the words, not the decorative ticks
            const word = status && [...status.childNodes].filter(n => !n.getAttribute?.('aria-hidden'))
                .map(n => n.textContent).join('').replace('Status: ', '').trim();
            if (word && window.__statuses[window.__statuses.length - 1] !== word) window.__statuses.push(word);
        };
        new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""", text)


def assert_ticks_advanced_to_read(page: Any, reply: Any) -> None:
    """The reply watched by ``watch_statuses`` ends at "read", its ticks never going backwards."""
    expect(reply).to_contain_text("read", timeout=SHOWS)
    shown = page.evaluate("window.__statuses")
    assert shown[0] in ("queued", "sent") and shown[-1] == "read", shown
    assert shown == sorted(shown, key=TICKS.index), f"ticks went backwards: {shown}"


def never_reloaded(page: Any) -> None:
    """Mark the document: a reload would lose the mark (see ``assert_not_reloaded``)."""
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


# ---------------------------------------------------------------------------------------------- sign-in
def test_sign_in_with_the_keyboard_and_a_wrong_password(console: Console, errors: ConsoleErrors,
                                                        local_stack: LocalStackClient) -> None:
    page = console.page
    user = create_user(local_stack.base_url)
    errors.allow(r"status of 400", r"/_local/cognito$")  # Cognito answers a wrong password with 400
    console.open("/")

    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(user.email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("Not-the-password-1")
    page.keyboard.press("Enter")

    expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(user.password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Inbox", "Channels", "Contacts", "Broadcasts", "Templates"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('console.session')").count(".") >= 2  # a JWT, not a password
    assert user.password not in page.content()


def test_demo_login_printed_by_make_dev_works(console: Console, local_stack: LocalStackClient) -> None:
    console.sign_in(User(DEMO_EMAIL, DEMO_PASSWORD, DEMO_TENANT), keyboard=True)

    expect(console.page.get_by_text(f"{DEMO_EMAIL} · {DEMO_TENANT}")).to_be_visible()
    assert local_stack.state["demo_login"]["email"] == DEMO_EMAIL


def test_sign_out_forgets_the_session(console: Console, admin: User) -> None:
    console.sign_in(admin)

    console.page.get_by_role("button", name="Sign out").click()
    console.page.reload()

    expect(console.page.get_by_role("heading", name="Sign in")).to_be_visible()


# ---------------------------------------------------------------------------------------------- channels
def test_connect_twilio_copy_the_webhook_url_and_check(console: Console, admin: User,
                                                       local_stack: LocalStackClient) -> None:
    page = console.page
    console.sign_in(admin)

    channel = twilio_channel(console)

    webhook_url = f"{local_stack.base_url}/webhooks/twilio"
    expect(page.get_by_text(webhook_url, exact=True)).to_be_visible()
    page.get_by_role("button", name="Copy webhook URL").click()
    assert page.evaluate("navigator.clipboard.readText()") == webhook_url
    expect(page.get_by_text(f"{webhook_url}/status", exact=True)).to_be_visible()
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Healthy")).to_be_visible()
    assert channel["auth_token"] not in page.content()  # the secret never comes back to the page
    console.nav("Channels")
    expect(page.get_by_role("list", name="Connected channels").get_by_role("link", name="Support")).to_be_visible()


def test_connect_meta_shows_the_verify_token(console: Console, admin: User, local_stack: LocalStackClient) -> None:
    page = console.page
    console.sign_in(admin)
    app_secret, access_token = "web-app-secret-" + secrets.token_hex(8), "EAAG-web-" + secrets.token_hex(10)

    console.connect_meta("Meta line", random_phone_number_id(), "419561257915477", "+15550783881",
                         access_token, app_secret)

    expect(page.get_by_text(f"{local_stack.base_url}/webhooks/meta", exact=True)).to_be_visible()
    verify_token = page.get_by_role("definition").filter(
        has=page.get_by_role("button", name="Copy verify token")).locator("code").inner_text()
    assert len(verify_token) >= 16
    page.get_by_role("button", name="Copy verify token").click()
    assert page.evaluate("navigator.clipboard.readText()") == verify_token
    verified = local_stack.http.get(f"{local_stack.base_url}/webhooks/meta", timeout=10, params={
        "hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": "1158201444"})
    assert (verified.status_code, verified.text) == (200, "1158201444")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Healthy")).to_be_visible()
    content = page.content()
    assert app_secret not in content and access_token not in content


def test_a_refused_channel_keeps_the_form_and_says_why(console: Console, admin: User, errors: ConsoleErrors) -> None:
    page = console.page
    errors.allow(r"status of 422", r"/v1/channels$")  # the API's answer to the bad number
    console.sign_in(admin)
    console.nav("Channels")
    page.get_by_role("button", name="Connect channel").click()
    page.get_by_label("Name", exact=True).fill("Bad")
    page.get_by_label("Phone number", exact=True).fill("+1415")  # too short for E.164
    page.get_by_label("Account SID", exact=True).fill("AC" + "0" * 32)
    page.get_by_label("Auth token", exact=True).fill("web-bad-token-1234")
    page.get_by_role("button", name="Connect", exact=True).click()

    expect(page.get_by_role("alert")).to_contain_text("phone_number")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Bad")


def test_auto_reply_settings_are_saved(console: Console, admin: User, local_stack: LocalStackClient) -> None:
    page = console.page
    console.sign_in(admin)
    twilio_channel(console)

    page.get_by_label("Mode").select_option("on")
    page.get_by_role("button", name="Add rule").click()
    page.get_by_label("Keywords of rule 1").fill("price, cost")
    page.get_by_label("Reply of rule 1").fill("Our prices are on the website.")
    page.get_by_label("Fallback reply").fill("Someone will answer soon.")
    page.get_by_label("Operator lock (minutes)").fill("45")
    page.get_by_role("button", name="Save auto-reply").click()

    expect(page.get_by_role("status").filter(has_text="Auto-reply settings saved.")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Mode")).to_have_value("on")
    expect(page.get_by_label("Keywords of rule 1")).to_have_value("price, cost")
    expect(page.get_by_label("Operator lock (minutes)")).to_have_value("45")


# ---------------------------------------------------------------------------------------------- inbox
def test_inbound_shows_up_live_and_the_reply_ticks_advance(console: Console, admin: User,
                                                            local_stack: LocalStackClient) -> None:
    page = console.page
    console.sign_in(admin)
    channel = twilio_channel(console)
    console.nav("Inbox")
    expect(page.get_by_text("No conversations yet")).to_be_visible()
    never_reloaded(page)

    customer_writes(local_stack.base_url, channel, "+15550111111", "Hi! Is the blue one in stock?")

    conversations = page.get_by_role("list", name="Conversations")
    item = conversations.get_by_role("link", name=re.compile("Ana"))
    expect(item).to_be_visible(timeout=SHOWS)
    expect(item).to_contain_text("Is the blue one in stock?")
    expect(item).to_contain_text("1 unread")
    expect(item).to_contain_text("left")  # of the 24-hour window
    console.open_conversation("Ana")
    expect(console.message("Is the blue one in stock?")).to_be_visible()
    expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")
    expect(item).not_to_contain_text("unread", timeout=SHOWS)  # opened: marked read

    watch_statuses(page, "Yes, we have it!")
    console.reply("Yes, we have it!")

    reply = console.message("Yes, we have it!")
    expect(reply).to_be_visible()
    assert_ticks_advanced_to_read(page, reply)
    expect(item).to_contain_text("Operator until", timeout=SHOWS)
    page.get_by_role("button", name="Release to bot").click()
    expect(page.get_by_role("button", name="Release to bot")).to_be_hidden(timeout=SHOWS)

    customer_writes(local_stack.base_url, channel, "+15550111111", "Great, I'll take it.")

    expect(console.message("Great, I'll take it.")).to_be_visible(timeout=SHOWS)
    assert_not_reloaded(page)
    texts = page.get_by_role("log").get_by_role("listitem").all_inner_texts()
    order = [i for i, t in enumerate(texts) for s in ("blue one", "we have it", "take it") if s in t]
    assert order == sorted(order), "newest at the bottom"


def test_meta_conversation_shows_up_and_the_reply_ticks_advance(console: Console, admin: User,
                                                    local_stack: LocalStackClient) -> None:
    page = console.page
    console.sign_in(admin)
    phone_number_id, app_secret = random_phone_number_id(), "web-app-secret-" + secrets.token_hex(8)
    console.connect_meta("Meta line", phone_number_id, "419561257915477", "+15550783881",
                         "EAAG-web-" + secrets.token_hex(10), app_secret)
    console.nav("Inbox")

    notification = meta_notification(phone_number_id=phone_number_id, display_phone_number="+15550783881",
                                     business_account_id="419561257915477", sender="+15550122222",
                                     text="Olá, tudo bem?", name="João")
    assert post_meta(f"{local_stack.base_url}/webhooks/meta", app_secret, notification).status_code == 200

    expect(page.get_by_role("link", name=re.compile("João"))).to_be_visible(timeout=SHOWS)
    console.open_conversation("João")
    expect(console.message("Olá, tudo bem?")).to_be_visible()
    watch_statuses(page, "Tudo ótimo!")
    console.reply("Tudo ótimo!")

    # The sandbox posts Meta's sent, delivered and read notifications, signed with this channel's app secret.
    assert_ticks_advanced_to_read(page, console.message("Tudo ótimo!"))


def test_outside_the_window_a_template_replaces_free_text(console: Console, admin: User,
                                                          local_stack: LocalStackClient) -> None:
    page = console.page
    console.sign_in(admin)
    channel = twilio_channel(console)
    customer_writes(local_stack.base_url, channel, "+15550133333", "Hello from yesterday", name="Bea")
    console.nav("Inbox")
    expect(page.get_by_role("link", name=re.compile("Bea"))).to_be_visible(timeout=SHOWS)
    conversation = wait_for(lambda: _conversation_item(local_stack, admin, "+15550133333"), "the conversation")
    _age_last_inbound(local_stack, conversation, hours=25)  # the customer wrote 25 h ago

    console.open_conversation("Bea")

    expect(page.get_by_text("Window closed: templates only").first).to_be_visible(timeout=SHOWS)
    expect(page.get_by_role("textbox", name="Message")).to_have_count(0)
    page.get_by_label("Template", exact=True).fill("HX" + "a" * 32)
    page.get_by_role("button", name="Add variable").click()
    page.get_by_label("Variable 1").fill("Bea")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("log").get_by_role("listitem").last).to_contain_text("sent", timeout=SHOWS)


def test_another_tenant_sees_nothing(console: Console, admin: User, errors: ConsoleErrors, browser: Any,
                                     local_stack: LocalStackClient) -> None:
    console.sign_in(admin)
    channel = twilio_channel(console)
    customer_writes(local_stack.base_url, channel, "+15550144444", "Private order details", name="Caro")
    console.nav("Inbox")
    expect(console.page.get_by_role("link", name=re.compile("Caro"))).to_be_visible(timeout=SHOWS)
    conversation_id = console.page.get_by_role("link", name=re.compile("Caro")).get_attribute("href")

    other = Console(browser.new_page(viewport=DESKTOP), local_stack.base_url)
    errors.attach(other.page)
    errors.allow(r"status of 404", r"/v1/conversations/")  # the other tenant's conversation id: not found
    other.sign_in(create_user(local_stack.base_url))

    expect(other.page.get_by_text("No conversations yet")).to_be_visible()
    other.nav("Channels")
    expect(other.page.get_by_text("No WhatsApp number is connected yet")).to_be_visible()
    other.open(str(conversation_id))
    expect(other.page.get_by_role("alert").first).to_be_visible()
    content = other.page.content()
    assert "Private order details" not in content and "Caro" not in content and channel["number"] not in content
    other.page.close()


def test_members_do_not_get_channel_settings(console: Console, local_stack: LocalStackClient) -> None:
    console.sign_in(create_user(local_stack.base_url, admin=False))

    console.nav("Channels")

    expect(console.page.get_by_text("Only administrators")).to_be_visible()
    expect(console.page.get_by_role("button", name="Connect channel")).to_have_count(0)


# ---------------------------------------------------------------------------------------------- phone, a11y
def test_phone_width_inbox_and_conversation(browser: Any, admin: User, errors: ConsoleErrors,
                                            local_stack: LocalStackClient) -> None:
    page = browser.new_page(viewport=PHONE)
    errors.attach(page)
    phone = Console(page, local_stack.base_url)
    phone.sign_in(admin)
    channel = twilio_channel(phone)
    customer_writes(local_stack.base_url, channel, "+15550155555", "Sent from my phone", name="Dani")
    phone.nav("Inbox")
    expect(page.get_by_role("link", name=re.compile("Dani"))).to_be_visible(timeout=SHOWS)

    phone.open_conversation("Dani")

    expect(page.get_by_role("list", name="Conversations")).to_be_hidden()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_role("link", name="← All conversations").click()
    expect(page.get_by_role("list", name="Conversations")).to_be_visible()
    page.close()
    assert errors.unexpected() == []


def test_every_control_has_a_name(console: Console, admin: User, local_stack: LocalStackClient) -> None:
    console.sign_in(admin)
    channel = twilio_channel(console)
    customer_writes(local_stack.base_url, channel, "+15550166666", "Hello", name="Eli")
    screens = ["/channels", f"/channels/{console.page.url.rsplit('/', 1)[-1]}", "/inbox", "/contacts"]
    unnamed_script = """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
        .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
        .map(el => el.outerHTML.slice(0, 80))"""
    for screen in screens:
        console.open(screen)
        console.page.get_by_role("heading").first.wait_for()
        assert console.page.evaluate(unnamed_script) == [], screen
    console.open("/inbox")
    console.open_conversation("Eli")
    assert console.page.evaluate(unnamed_script) == []


# ---------------------------------------------------------------------------------------------- helpers
def _conversation_item(local_stack: LocalStackClient, user: User, phone: str) -> dict[str, Any] | None:
    token = local_stack.token(tenant_id=user.tenant_id, admin=True)
    items = local_stack.request("GET", "/v1/conversations?limit=100", token=token).json()["items"]
    return next((c for c in items if c["contact"]["phone"] == phone), None)


def _age_last_inbound(local_stack: LocalStackClient, conversation: dict[str, Any], hours: int) -> None:
    """Move the contact's last message ``hours`` into the past in the stack's table (time passing)."""
    import datetime

    dynamodb = boto3.client("dynamodb", endpoint_url=local_stack.state["aws_endpoint"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    table = local_stack.state["tables"]["ConversationsTable"]
    items = dynamodb.scan(TableName=table, FilterExpression="conversation_id = :id",
                          ExpressionAttributeValues={":id": {"S": conversation["id"]}})["Items"]
    assert len(items) == 1
    then = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=hours)).isoformat(timespec="milliseconds")
    dynamodb.update_item(TableName=table, Key={"pk": items[0]["pk"], "sk": items[0]["sk"]},
                         UpdateExpression="SET last_inbound_at = :t",
                         ExpressionAttributeValues={":t": {"S": then.replace("+00:00", "Z")}})
