"""The web console: bundle size (gzip, as CloudFront compresses it) and, in Debian's Chromium against a fresh local
stack, time to first render and how soon a new message and a status change show up in the open inbox.

``python -m bench.console`` prints the section; ``make bench`` puts it in docs/BENCHMARKS.md. Targets (issue 15):
JavaScript ≤ 150 KB gzip, first render ≤ 1 s on the local stack; messages within 5 s, statuses within 10 s.
"""

from __future__ import annotations

import gzip
import re
import secrets
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from local import REPO_ROOT
from local.browser import DESKTOP, Console, chromium, create_user, random_twilio_number
from local.say import post_twilio, twilio_form

DIST = REPO_ROOT / "web" / "dist"
JS_BUDGET_KB = 150
FIRST_RENDER_BUDGET_MS = 1000

# Runs before the page's own scripts: the moment the sign-in heading exists, in ms since navigation start.
RENDER_PROBE = """
new MutationObserver((_, observer) => {
  if ([...document.querySelectorAll('h1')].some(h => h.textContent === 'Sign in')) {
    window.__signInAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true});
"""
# The wall-clock moment (Date.now) a text first shows anywhere on the page: window.__seen resolves to it.
SEEN_PROBE = """text => { window.__seen = new Promise(resolve => {
  const seen = () => document.body.innerText.includes(text);
  if (seen()) return resolve(Date.now());
  new MutationObserver((_, observer) => {
    if (seen()) { observer.disconnect(); resolve(Date.now()); }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}); }"""


def bundle(dist: Path = DIST) -> dict[str, int]:
    """Bytes of each built JavaScript/CSS file, raw and gzip-compressed (level 9, like a CDN's best effort)."""
    sizes: dict[str, int] = {}
    for path in sorted((dist / "assets").glob("*")):
        if path.suffix in (".js", ".css"):
            data = path.read_bytes()
            sizes[f"{path.suffix[1:]} raw"] = sizes.get(f"{path.suffix[1:]} raw", 0) + len(data)
            sizes[f"{path.suffix[1:]} gzip"] = sizes.get(f"{path.suffix[1:]} gzip", 0) + len(gzip.compress(data, 9))
    return sizes


def first_render(browser: Any, base_url: str, rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"first contentful paint, cold": [], "sign-in form, cold": [],
                                       "sign-in form, warm cache": []}
    for _ in range(rounds):
        context = browser.new_context(viewport=DESKTOP)  # a new profile: nothing cached
        page = context.new_page()
        page.add_init_script(RENDER_PROBE)
        page.goto(f"{base_url}/")
        page.get_by_role("heading", name="Sign in").wait_for()
        samples["sign-in form, cold"].append(page.evaluate("window.__signInAt"))
        samples["first contentful paint, cold"].append(page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN"))
        page.reload()
        page.get_by_role("heading", name="Sign in").wait_for()
        samples["sign-in form, warm cache"].append(page.evaluate("window.__signInAt"))
        context.close()
    return samples


def live_updates(browser: Any, base_url: str, rounds: int) -> dict[str, list[float]]:
    """Seconds from a customer's message (the webhook's answer) to its text on screen in the open inbox, and from
    a reply's Send to its "read" status (the sandbox posts the status callbacks at once)."""
    samples: dict[str, list[float]] = {"new message shown": [], "reply shown as read": []}
    user = create_user(base_url)
    page = browser.new_page(viewport=DESKTOP)
    console = Console(page, base_url)
    console.sign_in(user)
    channel = {"number": random_twilio_number(), "sid": "AC" + secrets.token_hex(16), "token": secrets.token_hex(16)}
    console.connect_twilio("Bench", channel["number"], channel["sid"], channel["token"])
    console.nav("Inbox")
    for round_ in range(rounds):
        text = f"bench message {round_} {secrets.token_hex(3)}"
        page.evaluate(SEEN_PROBE, text)
        form = twilio_form(to=channel["number"], account_sid=channel["sid"], sender="+15550177777", text=text)
        post_twilio(f"{base_url}/webhooks/twilio", channel["token"], form).raise_for_status()
        sent_at = time.time() * 1000
        samples["new message shown"].append((page.evaluate("window.__seen") - sent_at) / 1000)
        if round_ == 0:
            console.open_conversation("Customer")
        reply = f"bench reply {round_}"
        console.page.get_by_role("textbox", name="Message").fill(reply)
        clicked = time.time()
        console.page.get_by_role("button", name="Send").click()
        message = console.message(reply)
        message.filter(has_text=re.compile(r"\bread\b")).wait_for(timeout=30_000)
        samples["reply shown as read"].append(time.time() - clicked)
    page.close()
    return samples


def measure(rounds: int = 5) -> dict[str, Any]:
    from local.testing import start_stack

    result: dict[str, Any] = {"bundle": bundle()}
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp))
        try:
            with chromium() as browser:
                result["render"] = first_render(browser, stack.base_url, rounds)
                result["live"] = live_updates(browser, stack.base_url, rounds)
        finally:
            stack.stop(signal.SIGTERM)
    return result


def report(result: dict[str, Any]) -> list[str]:
    sizes = result["bundle"]
    js_kb = sizes.get("js gzip", 0) / 1024
    lines = [
        "| what | raw KB | gzip KB | target |",
        "|---|---:|---:|---|",
        f"| JavaScript (all of it) | {sizes.get('js raw', 0) / 1024:.1f} | {js_kb:.1f} | ≤ {JS_BUDGET_KB} KB gzip"
        f" {'✓' if js_kb <= JS_BUDGET_KB else '✗'} |",
        f"| CSS | {sizes.get('css raw', 0) / 1024:.1f} | {sizes.get('css gzip', 0) / 1024:.1f} | |",
        "",
        "| time to… (ms since navigation start) | median | max | target |",
        "|---|---:|---:|---|",
    ]
    for name, values in result["render"].items():
        ok = max(values) <= FIRST_RENDER_BUDGET_MS
        target = f"≤ {FIRST_RENDER_BUDGET_MS} ms {'✓' if ok else '✗'}" if "sign-in" in name else ""
        lines.append(f"| {name} | {statistics.median(values):.0f} | {max(values):.0f} | {target} |")
    lines += ["", "| live update (s) | median | max | target |", "|---|---:|---:|---|"]
    for name, values in result["live"].items():
        budget = 5 if name.startswith("new") else 10
        lines.append(f"| {name} | {statistics.median(values):.1f} | {max(values):.1f} | ≤ {budget} s"
                     f" {'✓' if max(values) <= budget else '✗'} |")
    return lines


if __name__ == "__main__":
    print("\n".join(report(measure())))
