"""Auto-reply decisions (DESIGN §4): keyword matching, mode resolution, operator lock, what gets no reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gateway.domain import ids
from gateway.domain.channel import AutoReplyConfig, AutoReplyRule, Channel, ChannelStatus, Provider
from gateway.services.autoreply import (
    choose_reply,
    decide,
    keyword_pattern,
    matching_rule,
    operator_locked,
    resolve_mode,
)
from gateway.store.models import ConversationModel
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = [
    AutoReplyRule(keywords=["price", "cost"], reply="Prices: see our site."),
    AutoReplyRule(keywords=["opening hours", "open"], reply="We open at 9."),
    AutoReplyRule(keywords=["price"], reply="never: the first rule wins"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is the price?", 0),
        ("PRICE", 0),
        ("Price!!", 0),
        ("how much does it COST", 0),
        ("pre-price list", 0),  # a hyphen separates words
        ("(price)", 0),
        ("prices please", None),  # whole words only
        ("priceless", None),
        ("overpriced", None),
        ("price_list", None),  # underscore is part of a word
        ("what are your opening   hours?", 1),  # phrase, any whitespace between its words
        ("Opening\nHours", 1),
        ("are you open today", 1),
        ("reopen", None),
        ("", None),
        (None, None),
    ],
)
def test_whole_word_case_insensitive_first_rule_wins(text: str | None, expected: int | None) -> None:
    assert matching_rule(text, RULES) == expected


@pytest.mark.parametrize(
    ("keyword", "text", "matches"),
    [
        ("café", "Is the CAFÉ open?", True),
        ("café", "Is the cafe\u0301 open?", True),  # decomposed é (e + combining acute) equals composed
        ("straße", "STRASSE 5", True),  # Unicode case folding, not just lower()
        ("ΤΙΜΗ", "ποια είναι η τιμη;", True),  # Greek, upper-case keyword
        ("цена", "Какая ЦЕНА?", True),
        ("цена", "ценами", False),  # whole words in Cyrillic too
        ("ｐｒｉｃｅ", "price", True),  # full-width letters (NFKC)
        ("价格", "请问价格是多少", True),  # no spaces between words in Chinese: substring on the CJK edge
        ("ราคา", "ราคาเท่าไหร่", True),  # Thai, same
        ("أسعار", "ما هي الأسعار؟", False),  # Arabic: the article makes it another word (no stemming)
        ("أسعار", "أسعار اليوم", True),
        ("👍", "ok 👍", True),
        ("c++", "I love C++!", True),
        ("a.b", "axb", False),  # keywords are literal text, not regexes
    ],
)
def test_unicode_keywords(keyword: str, text: str, matches: bool) -> None:
    rule = AutoReplyRule(keywords=[keyword], reply="r")
    assert (matching_rule(text, [rule]) == 0) is matches


def test_blank_keyword_never_matches() -> None:
    assert keyword_pattern("   ") is None


@given(st.text(max_size=200), st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5))
def test_matching_never_raises_and_literal_keywords_match_themselves(text: str, keywords: list[str]) -> None:
    rules = [AutoReplyRule(keywords=[k], reply="r") for k in keywords if k.strip()] or [
        AutoReplyRule(keywords=["x"], reply="r")
    ]
    matching_rule(text, rules)  # any input: no exception
    for index, rule in enumerate(rules):
        found = matching_rule(f" {rule.keywords[0]} ", rules)
        if keyword_pattern(rule.keywords[0]) is not None and found is not None:
            assert found <= index


def test_choose_reply_fallback_and_unsupported_notice() -> None:
    config = AutoReplyConfig(mode="on", rules=RULES, fallback="We will answer soon.",
                             unsupported_notice="Cannot read that.")
    assert choose_reply(config, "text", "price?") is not None
    assert choose_reply(config, "text", "price?").source == "rule:0"  # type: ignore[union-attr]
    assert choose_reply(config, "text", "hello").source == "fallback"  # type: ignore[union-attr]
    assert choose_reply(config, "image", None).source == "fallback"  # type: ignore[union-attr]
    unsupported = choose_reply(config, "unsupported", "price")
    assert unsupported is not None
    assert (unsupported.source, unsupported.text) == ("unsupported_notice", "Cannot read that.")
    bare = AutoReplyConfig(mode="on", rules=RULES)
    assert choose_reply(bare, "text", "hello") is None
    assert choose_reply(bare, "unsupported", "price") is None  # unsupported content gets only the notice


@pytest.mark.parametrize(
    ("channel_mode", "bot_mode", "expected"),
    [
        ("on", None, "on"),
        ("shadow", None, "shadow"),
        ("off", None, "off"),
        (None, None, "off"),
        ("on", "off", "off"),
        ("off", "on", "on"),
        ("on", "shadow", "shadow"),
        ("shadow", "on", "on"),
        ("on", "nonsense", "on"),
        ("nonsense", None, "off"),
    ],
)
def test_conversation_bot_mode_overrides_channel_mode(channel_mode: str | None, bot_mode: str | None,
                                                       expected: str) -> None:
    assert resolve_mode(channel_mode, bot_mode) == expected


@pytest.mark.parametrize(
    ("lock", "locked"),
    [
        (None, False),
        ("", False),
        (ids.iso(NOW + timedelta(minutes=1)), True),
        (ids.iso(NOW - timedelta(seconds=1)), False),
        (ids.iso(NOW), False),
        ("garbage", False),
    ],
)
def test_operator_lock(lock: str | None, locked: bool) -> None:
    assert operator_locked(lock, NOW) is locked


def _channel(auto_reply: dict[str, Any] | None, *, active: bool = True) -> Channel:
    return Channel(
        tenant_id="acme", channel_id="ch_1", provider=Provider.TWILIO, name="Main", phone_number="+14155238886",
        status=ChannelStatus.ACTIVE if active else ChannelStatus.DISABLED, created_at="", updated_at="",
        credentials_ciphertext="", auto_reply=auto_reply,
    )


def _conversation(bot_mode: str | None = None, lock: str | None = None, kind: str | None = None) -> ConversationModel:
    return ConversationModel("TENANT#acme", "CONV#cv_1", bot_mode=bot_mode, operator_lock_until=lock,
                             contact_phone="+14155550100", kind=kind)


CONFIG = {"mode": "on", "rules": [{"keywords": ["price"], "reply": "Prices!"}], "fallback": "Soon."}
RECENT = ids.iso(NOW - timedelta(minutes=1))


@pytest.mark.parametrize(
    ("case", "channel", "conversation", "message_type", "created_at", "skipped"),
    [
        ("replies", _channel(CONFIG), _conversation(), "text", RECENT, None),
        ("no configuration", _channel(None), _conversation(), "text", RECENT, "off"),
        ("bot_mode off", _channel(CONFIG), _conversation(bot_mode="off"), "text", RECENT, "off"),
        ("operator lock", _channel(CONFIG), _conversation(lock=ids.iso(NOW + timedelta(minutes=5))), "text",
         RECENT, "operator_lock"),
        ("expired lock", _channel(CONFIG), _conversation(lock=ids.iso(NOW - timedelta(minutes=5))), "text",
         RECENT, None),
        ("disabled channel", _channel(CONFIG, active=False), _conversation(), "text", RECENT, "channel_disabled"),
        ("reaction", _channel(CONFIG), _conversation(), "reaction", RECENT, "type"),
        ("system", _channel(CONFIG), _conversation(), "system", RECENT, "type"),
        ("older than the window", _channel(CONFIG), _conversation(), "text", ids.iso(NOW - timedelta(hours=25)),
         "too_old"),
        ("unsupported without notice", _channel(CONFIG), _conversation(), "unsupported", RECENT, "no_reply"),
        ("a group: never, not even with bot_mode on", _channel(CONFIG), _conversation(bot_mode="on", kind="group"),
         "text", RECENT, "group"),
    ],
)
def test_decide(case: str, channel: Channel, conversation: ConversationModel, message_type: str, created_at: str,
                skipped: str | None) -> None:
    decision = decide(channel, conversation, message_type, "what price?", created_at, NOW)
    assert decision.skipped == skipped, case
    assert (decision.reply is not None) is (skipped is None)


def test_bot_mode_on_in_a_conversation_of_a_channel_that_is_off() -> None:
    decision = decide(_channel({**CONFIG, "mode": "off"}), _conversation(bot_mode="on"), "text", "hi", RECENT, NOW)
    assert decision.mode == "on" and decision.reply is not None and decision.reply.text == "Soon."
