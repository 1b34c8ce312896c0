"""Meta webhook test material: the official spec's example notifications, signing, small payload builders.

The examples are read from ``../shared/specs/meta-business-messaging-api_v23.0.yaml`` (path
``/whatsapp/webhooks``, POST): the inbound test corpus. Bodies are serialised the way Meta sends them
(``json.dumps`` default: compact enough, non-ASCII escaped as ``\\uXXXX``) and signed over those exact bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).resolve().parents[1].parent / "shared/specs/meta-business-messaging-api_v23.0.yaml"
EXAMPLE_PHONE_NUMBER_ID = "106540352242922"
CONTACT_WA_ID = "16505551234"


@lru_cache(maxsize=1)
def meta_spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open("rb") as handle:
        return dict(yaml.load(handle, Loader=loader))


def webhook_examples() -> dict[str, dict[str, Any]]:
    """Example name → notification, for every example of POST /whatsapp/webhooks in the spec."""
    examples = meta_spec()["paths"]["/whatsapp/webhooks"]["post"]["requestBody"]["content"]["application/json"]
    return {name: example["value"] for name, example in examples["examples"].items()}


def spec_schema_errors(instance: Any, schema: str) -> list[str]:
    """Where ``instance`` breaks the spec's ``components/schemas/<schema>`` (empty when it conforms)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": meta_spec()["components"]})
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def meta_bytes(payload: Any) -> bytes:
    """Bytes as Meta sends them: non-ASCII escaped (``\\u00ed``), so the body is pure ASCII."""
    return json.dumps(payload).encode("ascii")


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notification(
    *values: dict[str, Any],
    waba_id: str = "419561257915477",
) -> dict[str, Any]:
    """One entry whose changes carry ``values`` (each a ``messages`` change value)."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": v} for v in values]}],
    }


def change_value(
    phone_number_id: str = EXAMPLE_PHONE_NUMBER_ID,
    *,
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
    }
    if contacts is not None:
        value["contacts"] = contacts
    elif messages:
        senders = dict.fromkeys(m["from"] for m in messages if "from" in m)
        value["contacts"] = [{"profile": {"name": f"Contact {s[-4:]}"}, "wa_id": s} for s in senders]
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    if errors is not None:
        value["errors"] = errors
    return value


def text_message(wamid: str, body: str = "hello", sender: str = CONTACT_WA_ID, **extra: Any) -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": "1749416383", "type": "text", "text": {"body": body}, **extra}


def status(wamid: str, value: str, *, timestamp: str = "1750263773", **extra: Any) -> dict[str, Any]:
    return {"id": wamid, "status": value, "timestamp": timestamp, "recipient_id": CONTACT_WA_ID, **extra}
