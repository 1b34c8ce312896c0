"""``make say TO=… TEXT=… [FROM=+1555…] [PROVIDER=twilio|meta] [MEDIA=path-or-url]``: play the customer in
``make dev``. Posts a real, signed webhook to the running gateway, exactly as the provider would:

- Twilio: the form Twilio posts (``From=whatsapp:+…``, ``Body``, ``MediaUrl0``…) to the channel's ``webhook_url``,
  signed with its auth token (``X-Twilio-Signature``, local/sign_twilio.py: twilio-python's ``RequestValidator``);
- Meta: a ``whatsapp_business_account`` notification with one message, signed with the channel's app secret (or
  the stack's global one) as ``X-Hub-Signature-256``.

``TO`` is the channel's WhatsApp number (Twilio) or its phone number ID (Meta). The channel and its secret are
looked up in the running stack's moto (``.local/state.json``): the same tables and KMS key the gateway uses. Media
is uploaded to the provider sandbox first, so the gateway downloads it the way it downloads from Twilio or Meta.

The builders and posters below take the secret as an argument; tests that created a channel (and know its secret)
call them directly.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from local import TEMPLATE_PATH
from local.dev import aws_env, channel_app_secret
from local.sandbox import meta_webhook_headers
from local.sign_twilio import twilio_signature
from local.template import load_template

DEFAULT_FROM = "+15550100001"
DEFAULT_NAME = "Customer"
TIMEOUT_S = 15


@dataclass(frozen=True)
class Media:
    body: bytes
    content_type: str
    filename: str


# ---------------------------------------------------------------------------------------------- Twilio
def twilio_form(*, to: str, account_sid: str, sender: str, text: str, name: str = DEFAULT_NAME,
                media: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """The form Twilio posts for an inbound WhatsApp message; ``media`` is (URL, content type) pairs."""
    sid = "SM" + secrets.token_hex(16)
    form = {
        "SmsMessageSid": sid, "NumMedia": str(len(media or [])), "ProfileName": name, "MessageType": "text",
        "SmsSid": sid, "WaId": sender.lstrip("+"), "SmsStatus": "received", "Body": text,
        "To": f"whatsapp:{to}", "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": sid,
        "AccountSid": account_sid, "From": f"whatsapp:{sender}", "ApiVersion": "2010-04-01",
    }
    for index, (url, content_type) in enumerate(media or []):
        form[f"MediaUrl{index}"] = url
        form[f"MediaContentType{index}"] = content_type
    if media:
        form["MessageType"] = content_type_family(media[0][1])
    return form


def post_twilio(webhook_url: str, auth_token: str, form: dict[str, str]) -> requests.Response:
    signature = twilio_signature(auth_token, webhook_url, list(form.items()))
    return requests.post(webhook_url, data=urlencode(form), timeout=TIMEOUT_S, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
    })


# ---------------------------------------------------------------------------------------------- Meta
def meta_notification(*, phone_number_id: str, display_phone_number: str, business_account_id: str, sender: str,
                      text: str, name: str = DEFAULT_NAME, media: dict[str, Any] | None = None) -> dict[str, Any]:
    """A notification shaped like Meta's for one inbound message; ``media`` is ``{"id", "mime_type", "sha256",
    "filename"}`` of an uploaded file (its type picks image/audio/video/document)."""
    wa_id = sender.lstrip("+")
    message: dict[str, Any] = {"from": wa_id, "id": "wamid." + secrets.token_urlsafe(24),
                               "timestamp": str(int(time.time()))}
    if media:
        kind = content_type_family(media["mime_type"])
        item = {k: media[k] for k in ("id", "mime_type", "sha256")}
        if text and kind != "audio":
            item["caption"] = text
        if kind == "document":
            item["filename"] = media["filename"]
        message |= {"type": kind, kind: item}
    else:
        message |= {"type": "text", "text": {"body": text}}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": business_account_id, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": display_phone_number.lstrip("+"), "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [message],
        }}]}],
    }


def post_meta(webhook_url: str, app_secret: str, notification: dict[str, Any]) -> requests.Response:
    body = json.dumps(notification).encode("ascii")  # Meta escapes non-ASCII, and signs these exact bytes
    return requests.post(webhook_url, data=body, timeout=TIMEOUT_S, headers=meta_webhook_headers(body, app_secret))


# ---------------------------------------------------------------------------------------------- media
def content_type_family(content_type: str) -> str:
    family = content_type.split("/", 1)[0]
    return family if family in ("image", "audio", "video") else "document"


def read_media(source: str) -> Media:
    """A local file, or a URL (fetched here: the sandbox then serves it like a provider's media host)."""
    if re.match(r"^https?://", source):
        response = requests.get(source, timeout=TIMEOUT_S)
        response.raise_for_status()
        ctype = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        return Media(response.content, ctype, source.rstrip("/").rsplit("/", 1)[-1] or "file")
    path = Path(source).expanduser()
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Media(path.read_bytes(), ctype, path.name)


def upload_media(sandbox_url: str, media: Media, account_sid: str | None = None) -> dict[str, Any]:
    query = f"?account_sid={account_sid}" if account_sid else ""
    response = requests.post(f"{sandbox_url}/_sandbox/media{query}", data=media.body, timeout=TIMEOUT_S,
                             headers={"Content-Type": media.content_type})
    response.raise_for_status()
    uploaded: dict[str, Any] = response.json()
    return uploaded


# ---------------------------------------------------------------------------------------------- the running stack
def channel_and_secrets(state: dict[str, Any], to: str, provider: str | None) -> tuple[Any, dict[str, str]]:
    """The active channel that owns ``to`` and its decrypted secrets, read from the running stack's moto."""
    os.environ.update(aws_env(state["aws_endpoint"], state["region"]))
    os.environ.update(state["env"])
    for spec in load_template(TEMPLATE_PATH).functions():  # the layer, where Lambda has /opt/python
        sys.path.extend(str(d) for d in spec.layer_dirs if str(d) not in sys.path)
    from gateway.bootstrap import ready
    from gateway.credentials import CredentialsCipher
    from gateway.domain.channel import route_key_meta, route_key_twilio
    from gateway.store.channels_repo import ChannelRepository

    ready()
    keys = []
    if provider in (None, "twilio") and to.startswith("+"):
        keys.append(route_key_twilio(to))
    if provider in (None, "meta") and to.isdigit():
        keys.append(route_key_meta(to))
    repo = ChannelRepository()
    channel = next((c for c in map(repo.resolve, keys) if c is not None), None)
    if channel is None:
        hint = "its number (+…)" if provider != "meta" else "its phone number ID (digits)"
        raise SystemExit(f"no active {provider or 'Twilio or Meta'} channel answers to {to!r}: give {hint}; "
                         "the console's channel page shows both")
    found = CredentialsCipher().decrypt(channel.tenant_id, channel.channel_id, channel.credentials_ciphertext)
    return channel, dict(found)


def say(state: dict[str, Any], to: str, text: str, sender: str = DEFAULT_FROM, *, provider: str | None = None,
        media: str | None = None, name: str = DEFAULT_NAME) -> requests.Response:
    channel, found = channel_and_secrets(state, to, provider)
    base = state["gateway_url"]
    item = read_media(media) if media else None
    if channel.provider.value == "twilio":
        pairs = []
        if item:
            uploaded = upload_media(state["sandbox_url"], item, channel.account_sid)
            pairs.append((uploaded["twilio_url"], item.content_type))
        form = twilio_form(to=channel.phone_number, account_sid=channel.account_sid, sender=sender, text=text,
                           name=name, media=pairs)
        return post_twilio(f"{base}/webhooks/twilio", found["auth_token"], form)
    app_secret = channel_app_secret(channel.phone_number_id)  # the channel's own, else the stack's META_APP_SECRET
    if not app_secret:
        raise SystemExit("the channel has no app secret and the stack no global META_APP_SECRET: nothing signs")
    meta_media = None
    if item:
        uploaded = upload_media(state["sandbox_url"], item)
        meta_media = {"id": uploaded["id"], "mime_type": item.content_type, "sha256": uploaded["sha256"],
                      "filename": item.filename}
    notification = meta_notification(
        phone_number_id=channel.phone_number_id, display_phone_number=channel.phone_number,
        business_account_id=channel.business_account_id or "0", sender=sender, text=text, name=name, media=meta_media,
    )
    return post_meta(f"{base}/webhooks/meta", app_secret, notification)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.say", description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", required=True, help="the channel's number (Twilio) or phone number ID (Meta)")
    parser.add_argument("--text", default="", help="the message (the caption, with --media)")
    parser.add_argument("--from", dest="sender", default=DEFAULT_FROM, help=f"the customer (default {DEFAULT_FROM})")
    parser.add_argument("--name", default=DEFAULT_NAME, help="the customer's WhatsApp profile name")
    parser.add_argument("--provider", choices=["twilio", "meta"], help="when TO could be either")
    parser.add_argument("--media", help="a file or URL to send as an attachment")
    args = parser.parse_args(argv)
    if not args.text and not args.media:
        parser.error("say something: --text and/or --media")
    if not re.fullmatch(r"\+[1-9]\d{6,14}", args.sender):
        parser.error("--from must be an E.164 number like +15551234567")
    from local.state import read_state

    try:
        state = read_state()
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    response = say(state, args.to, args.text, args.sender, provider=args.provider, media=args.media, name=args.name)
    print(f"{response.request.method} {response.url} → {response.status_code} {response.text[:200]}")
    if response.ok:
        print(f"Sent as {args.sender}: open {state['gateway_url']}/inbox to see it (and answer it).")
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
