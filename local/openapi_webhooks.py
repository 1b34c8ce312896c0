"""The provider webhook routes of docs/openapi.json, declared in this one place (``python -m local.openapi``, D12).

The webhook handlers have no Powertools resolver to describe them (a cold webhook imports less,
gateway.http.webhook), so their operations are declared here, built from the code's own facts: the signature
header names, the body limits, the challenge and SID patterns, the TwiML answer and the Meta receipt's fields.
tests/unit/test_openapi.py holds the declaration to the handlers: the sample events (as the providers send them)
conform to the documented requests, and the handlers' answers (200 and each error) to the documented responses.

Forms list the parameters the gateway reads; Twilio sends more and adds new ones without notice, and every one is
kept for the signature, so the forms allow any other parameter.
"""

from __future__ import annotations

import json
from typing import Any

from local.runtime import load_handler
from local.template import Template

WEBHOOK_PREFIX = "/webhooks/"
ERROR = {"$ref": "#/components/schemas/ErrorOut"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def webhook_operations(template: Template) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(path → method → operation, component schemas) for every webhook route of the template."""
    for route in template.http_routes():  # loaded like Lambda loads them: the facts below are the handlers'
        if route.path.startswith(WEBHOOK_PREFIX):
            load_handler(template.function(route.function_id), module_name=f"_openapi_{route.function_id}")
    from gateway.domain import errors as e
    from gateway.http.webhook import EMPTY_TWIML, server_error
    from gateway.providers import meta_webhook as mw
    from gateway.providers import twilio_webhook as tw
    from gateway.services.meta_webhooks import MAX_PHONE_NUMBER_IDS, Receipt

    internal = json.loads(server_error()["body"])["error"]["code"]
    twiml = {"description": f"Stored, or a redelivery that changed nothing: TwiML `{EMPTY_TWIML}`.",
             "content": {"text/xml": {"schema": {"type": "string"}, "example": EMPTY_TWIML}}}
    twilio_errors = {
        "400": _json(f"{e.BadRequest.code}: not a UTF-8 form, or a parameter the gateway reads is missing or "
                     "malformed (`field` names it)", ERROR),
        "401": _json(f"{e.InvalidSignature.code}: `{tw.SIGNATURE_HEADER}` is missing or does not match the "
                     "channel's auth token over its public URL and the form", ERROR),
        "404": _json(f"{e.ChannelNotFound.code}: no active channel claims the number, or `AccountSid` is not the "
                     "channel's (a disabled channel is unknown)", ERROR),
        "413": _json(f"{e.PayloadTooLarge.code}: the body is over {tw.MAX_BODY_BYTES} bytes", ERROR),
        "500": _json(f"{internal}: storage or KMS trouble; Twilio's fallback URL gets the message instead of it "
                     "being lost", ERROR),
    }
    twilio_signature = {
        "name": "X-Twilio-Signature", "in": "header", "required": True,
        "description": "Base64 HMAC-SHA1 with the channel's auth token over its public URL (`webhook_url` or "
                       "`status_callback_url`, with the query string) and the form's parameters sorted by name "
                       "(Twilio's algorithm; docs/decisions.md D15)",
        "schema": {"type": "string"},
    }
    sid = {"type": "string", "pattern": tw._SID.pattern}
    address = _string("`whatsapp:` + the E.164 number", pattern=r"^whatsapp:\+[1-9][0-9]{6,14}$",
                      example="whatsapp:+14155238886")
    form_base = {"type": "object", "additionalProperties": {"type": "string"}}
    schemas: dict[str, Any] = {
        "TwilioInboundForm": {
            **form_base,
            "title": "TwilioInboundForm",
            "description": "Twilio's incoming-message parameters (the ones the gateway reads; any other is kept).",
            "required": ["MessageSid", "AccountSid", "From", "To"],
            "properties": {
                "MessageSid": {**sid, "description": "SM… / MM…: the message, deduplicated on it"},
                "AccountSid": {**sid, "description": "must be the channel's account"},
                "From": {**address, "description": "the contact"},
                "To": {**address, "description": "the channel's number"},
                "Body": _string("the text, or a media caption (blank for media alone)"),
                "NumMedia": _string("how many MediaUrl<N> follow", pattern=r"^[0-9]+$"),
                "ProfileName": _string("the contact's WhatsApp profile name"),
                "WaId": _string("the contact's WhatsApp id (digits)"),
                "MessageType": _string("text, image, location, button, interactive, …"),
                "ButtonText": _string("a quick-reply button's text"),
                "ButtonPayload": _string("a quick-reply button's payload"),
                "Latitude": _string("a shared location", pattern=r"^-?[0-9.]+$"),
                "Longitude": _string("a shared location", pattern=r"^-?[0-9.]+$"),
                "OriginalRepliedMessageSid": _string("the message this one replies to"),
            },
            "patternProperties": {
                r"^MediaUrl[0-9]{1,3}$": _string(f"a media URL (at most {tw.MAX_MEDIA} are read)"),
                r"^MediaContentType[0-9]{1,3}$": _string("that media's content type"),
            },
        },
        "TwilioStatusForm": {
            **form_base,
            "title": "TwilioStatusForm",
            "description": "Twilio's status callback parameters for an outbound message.",
            "required": ["MessageSid", "MessageStatus", "AccountSid", "From", "To"],
            "properties": {
                "MessageSid": {**sid, "description": "the message's provider id"},
                "MessageStatus": _string("queued, sent, delivered, read, failed, undelivered, … (unknown ones are "
                                         "acknowledged and ignored)"),
                "AccountSid": {**sid, "description": "must be the channel's account"},
                "From": {**address, "description": "the channel's number"},
                "To": {**address, "description": "the contact"},
                "ErrorCode": _string("Twilio's error code, on failed / undelivered"),
                "ErrorMessage": _string("Twilio's error message"),
            },
        },
        "MetaNotification": {
            "type": "object",
            "title": "MetaNotification",
            "description": "A WhatsApp Cloud API notification: any number of entries and changes, each a `messages` "
                           "change carrying messages, statuses or errors for one phone number id "
                           f"(at most {MAX_PHONE_NUMBER_IDS} numbers per notification). Other objects and fields "
                           "are acknowledged.",
            "required": ["object", "entry"],
            "properties": {
                "object": _string(f"`{mw.WHATSAPP_OBJECT}`", example=mw.WHATSAPP_OBJECT),
                "entry": {"type": "array", "items": {
                    "type": "object",
                    "required": ["id", "changes"],
                    "properties": {
                        "id": _string("the WhatsApp Business Account id"),
                        "changes": {"type": "array", "items": {
                            "type": "object",
                            "required": ["field", "value"],
                            "properties": {
                                "field": _string(f"`{mw.MESSAGES_FIELD}` is handled", example=mw.MESSAGES_FIELD),
                                "value": {"$ref": "#/components/schemas/MetaChangeValue"},
                            },
                        }},
                    },
                }},
            },
        },
        "MetaChangeValue": {
            "type": "object",
            "title": "MetaChangeValue",
            "required": ["metadata"],
            "properties": {
                "messaging_product": _string("`whatsapp`"),
                "metadata": {
                    "type": "object",
                    "required": ["phone_number_id"],
                    "properties": {
                        "display_phone_number": _string("the number, digits only"),
                        "phone_number_id": _string("the channel's phone number id",
                                                   pattern=f"^{mw._GRAPH_ID.pattern}$"),
                    },
                },
                "contacts": {"type": "array", "items": {"type": "object"}},
                "messages": {"type": "array", "items": {
                    "type": "object", "required": ["from", "id", "timestamp", "type"],
                    "description": "an inbound message: `type` names the object carrying it (`text`, `image`, …)",
                }},
                "statuses": {"type": "array", "items": {
                    "type": "object", "required": ["id", "status", "timestamp", "recipient_id"],
                    "description": "sent, delivered, read or failed (with `errors`) for an outbound `wamid`",
                }},
                "errors": {"type": "array", "items": {"type": "object"}},
            },
        },
        "MetaReceipt": _receipt_schema(Receipt().summary()),
    }
    meta_signature = {
        "name": "X-Hub-Signature-256", "in": "header", "required": True,
        "description": "`sha256=` + hex HMAC-SHA256 of the exact body bytes with the app secret of every channel "
                       "the notification names (its own, else the deployment's `MetaAppSecret`; "
                       "docs/decisions.md D8)",
        "schema": {"type": "string", "pattern": f"^{mw._SIGNATURE.pattern}$"},
    }
    hub = [
        {"name": "hub.mode", "in": "query", "required": True, "schema": {"type": "string", "enum": ["subscribe"]}},
        {"name": "hub.verify_token", "in": "query", "required": True,
         "description": "the channel's `verify_token`", "schema": {"type": "string", "pattern":
                                                                    f"^{mw._VERIFY_TOKEN.pattern}$"}},
        {"name": "hub.challenge", "in": "query", "required": True, "description": "answered back as is",
         "schema": {"type": "string", "pattern": f"^{mw._CHALLENGE.pattern}$"}},
    ]
    twilio_body = {"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": {"$ref": "#/components/schemas/TwilioInboundForm"}}}}
    status_body = {"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": {"$ref": "#/components/schemas/TwilioStatusForm"}}}}
    paths: dict[str, dict[str, Any]] = {
        "/webhooks/twilio": {"post": {
            "summary": "Twilio: an inbound WhatsApp message",
            "description": "Set as the sender's \"A message comes in\" URL and fallback URL (the channel's "
                           "`webhook_url`). Stored once with the conversation and contact; media, auto-replies "
                           "and events follow asynchronously.",
            "operationId": "twilio_inbound_webhook",
            "parameters": [twilio_signature],
            "requestBody": twilio_body,
            "responses": {"200": twiml, **twilio_errors},
        }},
        "/webhooks/twilio/status": {"post": {
            "summary": "Twilio: a status callback for an outbound message",
            "description": "Every send passes the channel's `status_callback_url`. Statuses move forward only; one "
                           "that arrives before the send recorded its provider id is parked and merged later.",
            "operationId": "twilio_status_callback",
            "parameters": [twilio_signature],
            "requestBody": status_body,
            "responses": {"200": {**twiml, "description": "Applied, parked, stale or ignored: TwiML "
                                                          f"`{EMPTY_TWIML}`."}, **twilio_errors},
        }},
        "/webhooks/meta": {
            "get": {
                "summary": "Meta: the webhook verification handshake",
                "description": "Meta calls it when the callback URL is saved; `webhook_verified_at` is set on the "
                               "channel whose verify token it names.",
                "operationId": "meta_webhook_verification",
                "parameters": hub,
                "responses": {
                    "200": {"description": "`hub.challenge`, as is (with `X-Content-Type-Options: nosniff`)",
                            "content": {"text/plain": {"schema": {"type": "string"}, "example": "1158201444"}}},
                    "403": _json(f"{e.Forbidden.code}: not a subscription request, or the verify token is no "
                                 "active Meta channel's (the challenge is never reflected)", ERROR),
                },
            },
            "post": {
                "summary": "Meta: a notification (messages, statuses, errors)",
                "description": "Subscribed to the `messages` field. Every message and status of the batch is "
                               "handled; unknown numbers, unusable items and other fields are counted and answered "
                               "200, since a retry could never succeed.",
                "operationId": "meta_webhook_notification",
                "parameters": [meta_signature],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/MetaNotification"}}}},
                "responses": {
                    "200": _json("handled: what the notification did", {"$ref": "#/components/schemas/MetaReceipt"}),
                    "400": _json(f"{e.BadRequest.code}: not UTF-8 JSON of Meta's shape, or more than "
                                 f"{MAX_PHONE_NUMBER_IDS} phone numbers", ERROR),
                    "401": _json(f"{e.InvalidSignature.code}: `{mw.SIGNATURE_HEADER}` is missing, malformed, or "
                                 "not the HMAC of every named channel's app secret (also when no channel is known)",
                                 ERROR),
                    "413": _json(f"{e.PayloadTooLarge.code}: the body is over {mw.MAX_BODY_BYTES} bytes", ERROR),
                    "500": _json(f"{internal}: storage or KMS trouble; Meta retries (for up to 7 days)", ERROR),
                },
            },
        },
    }
    for item in paths.values():
        for operation in item.values():
            operation["tags"] = ["webhooks"]
            operation["security"] = []  # the provider's signature is the authentication
    return paths, schemas


def _receipt_schema(summary: dict[str, object]) -> dict[str, Any]:
    """The 200 answer of POST /webhooks/meta: ``received`` and the fields of ``Receipt.summary()``."""
    properties: dict[str, Any] = {"received": {"type": "boolean", "const": True}}
    for name, value in summary.items():
        properties[name] = (
            {"type": "object", "additionalProperties": {"type": "integer"},
             "description": "statuses by outcome: applied, stale, parked, ignored"}
            if isinstance(value, dict) else {"type": "integer", "minimum": 0}
        )
    return {"type": "object", "title": "MetaReceipt", "required": list(properties), "properties": properties}
