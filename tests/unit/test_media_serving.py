"""Which stored media a presigned URL may show inline (gateway/domain/media.py, docs/decisions.md D19)."""

from __future__ import annotations

import re

import pytest
from gateway.domain.media import INLINE_TYPES, serving_headers
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "TEXT/HTML; charset=utf-8", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/pdf",
     "application/javascript", "text/plain", "application/octet-stream", "image/x-icon", "", None, "audio/svg+xml",
     " image/jpeg/../text/html", "multipart/x-mixed-replace"],
)
def test_anything_not_inline_safe_is_an_octet_stream_attachment(content_type: str | None) -> None:
    assert serving_headers(content_type) == ("application/octet-stream", "attachment")


@pytest.mark.parametrize("content_type", sorted(INLINE_TYPES))
def test_whatsapp_images_audio_and_video_are_inline(content_type: str) -> None:
    assert serving_headers(content_type.upper() + "; codecs=opus") == (content_type, "inline")


def test_the_contacts_file_name_is_kept_safely() -> None:
    assert serving_headers("application/pdf", 'a"b\r\nc.pdf')[1] == (
        "attachment; filename=\"a_b__c.pdf\"; filename*=UTF-8''a%22b%0D%0Ac.pdf"
    )
    assert serving_headers("image/png", "фото.png")[1] == (
        "inline; filename=\"____.png\"; filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE.png"
    )


@given(st.sampled_from(["text/html", "image/png"]), st.text(min_size=1, max_size=300))
def test_any_file_name_gives_one_well_formed_header_value(content_type: str, filename: str) -> None:
    _, disposition = serving_headers(content_type, filename)
    assert re.fullmatch(r"(inline|attachment); filename=\"[A-Za-z0-9._ -]+\"; filename\*=UTF-8''[A-Za-z0-9%._~-]+",
                        disposition), disposition
