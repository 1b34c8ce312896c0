"""Driving the web console in Debian's Chromium with Playwright for Python, for the browser tests
(tests/e2e/test_console_browser.py), ``make screenshots`` and ``make bench``.

- ``chromium()``: ``/usr/bin/chromium`` (installed by ``make deps``; Playwright's own browser downloads are
  impossible on these machines), headless, with the flags this closed network needs: without
  ``--disable-background-networking`` and friends Chromium keeps dialling Google and its connections are refused.
- ``ConsoleErrors``: every ``console.error`` and uncaught exception of a page, so that a test fails on any the
  user did not cause (``allow`` names the expected ones, e.g. the 400 of a wrong password).
- ``Console``: what a person does in the console, by role and accessible name only (the names DESIGN's browser
  contract fixes: docs/console.md): sign in, connect a channel, open a conversation, answer.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``) for the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ConsoleErrors:
    """The page's console errors and uncaught exceptions, as ``(text, url)``."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    allowed: list[tuple[re.Pattern[str], re.Pattern[str]]] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append((f"uncaught {error}", page.url)))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.seen.append((message.text, (message.location or {}).get("url", "")))

    def allow(self, text: str, url: str = "") -> None:
        """An error the test causes on purpose (regular expressions over the text and the resource URL)."""
        self.allowed.append((re.compile(text), re.compile(url)))

    def unexpected(self) -> list[tuple[str, str]]:
        return [(text, url) for text, url in self.seen
                if not any(t.search(text) and u.search(url) for t, u in self.allowed)]


@dataclass(frozen=True)
class User:
    email: str
    password: str
    tenant_id: str
    admin: bool = True


def create_user(base_url: str, tenant_id: str | None = None, *, admin: bool = True) -> User:
    """A new user of the local pool (``POST /_local/users``), in a tenant of its own unless one is given."""
    tenant = tenant_id or f"web-{secrets.token_hex(4)}"
    user = User(f"ops-{secrets.token_hex(4)}@{tenant}.example", f"Pw-{secrets.token_hex(8)}-9A", tenant, admin)
    response = requests.post(f"{base_url}/_local/users", timeout=10, json={
        "email": user.email, "password": user.password, "tenant_id": tenant, "admin": admin})
    response.raise_for_status()
    return user


def random_twilio_number() -> str:
    return f"+1415{secrets.randbelow(10**7):07d}"


def random_phone_number_id() -> str:
    return str(10**14 + secrets.randbelow(10**14))


@dataclass
class Console:
    """One signed-in (or signing-in) person in one browser page."""

    page: Any
    base_url: str

    def open(self, path: str = "/") -> None:
        self.page.goto(f"{self.base_url}{path}")

    def sign_in(self, user: User, *, keyboard: bool = False) -> None:
        page = self.page
        self.open("/")
        page.get_by_role("heading", name="Sign in").wait_for()
        if keyboard:  # the form with the keyboard alone: Email has the focus, Tab to Password, Enter submits
            page.keyboard.type(user.email)
            page.keyboard.press("Tab")
            page.keyboard.type(user.password)
            page.keyboard.press("Enter")
        else:
            page.get_by_label("Email").fill(user.email)
            page.get_by_label("Password").fill(user.password)
            page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Inbox").wait_for()

    def nav(self, name: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()

    def connect_twilio(self, name: str, number: str, account_sid: str, auth_token: str) -> None:
        self._connect("Twilio", {"Name": name, "Phone number": number, "Account SID": account_sid,
                                 "Auth token": auth_token})

    def connect_meta(self, name: str, phone_number_id: str, waba_id: str, display: str, access_token: str,
                     app_secret: str) -> None:
        self._connect("Meta", {"Name": name, "Phone number ID": phone_number_id,
                               "WhatsApp Business Account ID": waba_id, "Display phone number": display,
                               "Access token": access_token, "App secret": app_secret})

    def _connect(self, provider: str, fields: dict[str, str]) -> None:
        page = self.page
        self.nav("Channels")
        page.get_by_role("button", name="Connect channel").click()
        page.get_by_role("radio", name=provider).check()
        for label, value in fields.items():
            page.get_by_label(label, exact=True).fill(value)
        page.get_by_role("button", name="Connect", exact=True).click()
        page.get_by_role("heading", name=fields["Name"], exact=True).wait_for()

    def open_conversation(self, contact: str) -> None:
        conversations = self.page.get_by_role("list", name="Conversations")
        conversations.get_by_role("link", name=re.compile(re.escape(contact))).click()
        self.page.get_by_role("log").wait_for()

    def reply(self, text: str) -> None:
        self.page.get_by_role("textbox", name="Message").fill(text)
        self.page.get_by_role("button", name="Send").click()

    def message(self, text: str) -> Any:
        """The message (a list item of the conversation's log) that shows ``text``."""
        return self.page.get_by_role("log").get_by_role("listitem").filter(has_text=text)
