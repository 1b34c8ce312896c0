"""How a stored media object is served: inline only when a browser renders it without running anything."""

from __future__ import annotations

from urllib.parse import quote

# What a browser may show inline from a presigned URL: types it renders without running anything (WhatsApp's own
# image, audio and video formats). Everything else (text/html, image/svg+xml, application/pdf, XML, unknown) is
# served as an application/octet-stream attachment, so a contact's file never runs as a page (docs/decisions.md D19).
INLINE_TYPES = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp",
    "audio/aac", "audio/amr", "audio/mp4", "audio/mpeg", "audio/ogg", "audio/opus",
    "video/mp4", "video/3gpp",
})


def serving_headers(content_type: str | None, filename: str | None = None) -> tuple[str, str]:
    """The Content-Type and Content-Disposition a stored media object is served with (presigned URLs override
    both; the object itself is stored with this disposition). ``filename`` is the contact's own name for it."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    inline = media_type in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    if filename:  # RFC 6266: an ASCII stand-in for old clients, the exact name UTF-8 percent-encoded
        fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in filename[:100])
        disposition += f'; filename="{fallback.strip() or "file"}"; filename*=UTF-8\'\'{quote(filename[:200], safe="")}'
    return (media_type if inline else "application/octet-stream"), disposition
