"""``make screenshots`` (``python -m local.screenshots [--out docs/screenshots]``): the console's main screens as
PNGs for the docs, taken in Debian's Chromium from a fresh local stack that a script fills the way a person would:
connect a Twilio and a Meta number through the form, a customer writes (text and a photo), someone answers.

Screens: sign-in, channels, connect form, channel (Meta: webhook URL and verify token), inbox, conversation
(ticks, a photo), conversation outside the 24-hour window (template), and the conversation at phone width.
"""

from __future__ import annotations

import argparse
import re
import signal
import struct
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from local import REPO_ROOT
from local.browser import DESKTOP, PHONE, Console, chromium, create_user, random_phone_number_id
from local.say import Media, meta_notification, post_meta, post_twilio, twilio_form, upload_media

OUT = REPO_ROOT / "docs" / "screenshots"
WAIT_MS = 15_000


def sample_photo(width: int = 320, height: int = 200) -> bytes:
    """A small PNG (a green-to-blue gradient with a sun), made here so that no image file is needed."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            sun = (x - 230) ** 2 + (y - 60) ** 2 < 900
            row += bytes((250, 210, 60) if sun else (40 + x * 120 // width, 140 + y * 80 // height, 170))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(
        b"IEND", b"")


def shoot(page: Any, out: Path, name: str, *, full: bool = False) -> None:
    page.wait_for_timeout(300)  # let the focus ring and any fade settle
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    print(f"  {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


def take(base_url: str, sandbox_url: str, out: Path) -> None:
    from playwright.sync_api import expect

    out.mkdir(parents=True, exist_ok=True)
    user = create_user(base_url, "acme")
    twilio = {"number": "+14155238886", "account_sid": "AC" + "0" * 32, "auth_token": "screens-twilio-token-1"}
    meta_id, app_secret = random_phone_number_id(), "screens-app-secret-1"
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        console = Console(page, base_url)
        console.open("/")
        page.get_by_label("Email").fill(user.email)
        shoot(page, out, "sign-in")
        console.sign_in(user)

        console.nav("Channels")
        page.get_by_role("button", name="Connect channel").click()
        page.get_by_label("Name", exact=True).fill("Support")
        page.get_by_label("Phone number", exact=True).fill(twilio["number"])
        page.get_by_label("Account SID", exact=True).fill(twilio["account_sid"])
        page.get_by_label("Auth token", exact=True).fill(twilio["auth_token"])
        shoot(page, out, "connect-form", full=True)
        page.get_by_role("button", name="Connect", exact=True).click()
        page.get_by_role("heading", name="Support").wait_for()
        console.connect_meta("Sales (Meta)", meta_id, "419561257915477", "+15550783881", "EAAG-screens-token",
                             app_secret)
        page.get_by_role("button", name="Check", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="Healthy")).to_be_visible()
        shoot(page, out, "channel", full=True)
        console.nav("Channels")
        page.get_by_role("list", name="Connected channels").wait_for()
        shoot(page, out, "channels")

        def twilio_says(sender: str, text: str, name: str, media: list[tuple[str, str]] | None = None) -> None:
            form = twilio_form(to=twilio["number"], account_sid=twilio["account_sid"], sender=sender, text=text,
                               name=name, media=media)
            post_twilio(f"{base_url}/webhooks/twilio", twilio["auth_token"], form).raise_for_status()

        photo = upload_media(sandbox_url, Media(sample_photo(), "image/png", "photo.png"), twilio["account_sid"])
        twilio_says("+15550111111", "Hi! Is the blue one still in stock?", "Ana Lima")
        twilio_says("+15550111111", "This one:", "Ana Lima", media=[(photo["twilio_url"], "image/png")])
        twilio_says("+15550133333", "Can I change my delivery address?", "Bea")
        post_meta(f"{base_url}/webhooks/meta", app_secret, meta_notification(
            phone_number_id=meta_id, display_phone_number="+15550783881", business_account_id="419561257915477",
            sender="+5511987654321", text="Olá! Vocês entregam no sábado?", name="João")).raise_for_status()

        console.nav("Inbox")
        expect(page.get_by_role("link", name=re.compile("João"))).to_be_visible(timeout=WAIT_MS)
        shoot(page, out, "inbox")
        console.open_conversation("Ana Lima")
        expect(console.message("This one:").get_by_role("img")).to_be_visible(timeout=WAIT_MS)
        console.reply("Yes! We have it in every size. Shall I reserve one for you?")
        expect(console.message("Shall I reserve")).to_contain_text("read", timeout=WAIT_MS)
        shoot(page, out, "conversation")

        phone = browser.new_page(viewport=PHONE)
        on_phone = Console(phone, base_url)
        on_phone.sign_in(user)
        on_phone.open_conversation("Ana Lima")
        expect(on_phone.message("Shall I reserve")).to_be_visible(timeout=WAIT_MS)
        shoot(phone, out, "conversation-phone")
        phone.close()
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    from local.testing import LocalStackClient, start_stack

    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp))
        try:
            print(f"Screenshots of the console at {stack.base_url}:")
            take(stack.base_url, str(LocalStackClient(stack).sandbox_url), args.out)
        finally:
            stack.stop(signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
