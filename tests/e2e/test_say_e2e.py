"""``make say`` (local/say.py) against the real local stack: it finds the channel and its secret in the stack's
moto, signs like the provider and the message lands in the tenant's inbox, media included, for both providers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local import REPO_ROOT
from local.testing import LocalStackClient, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 40


def say(local_stack: LocalStackClient, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_STATE_FILE": str(local_stack.stack.state_path)}
    return subprocess.run([sys.executable, "-m", "local.say", *args], cwd=REPO_ROOT, env=env, text=True,
                          capture_output=True, timeout=60)


def inbox(local_stack: LocalStackClient, token: str, sender: str) -> list[dict[str, Any]]:
    conversations = local_stack.request("GET", "/v1/conversations?limit=100", token=token).json()["items"]
    mine = [c for c in conversations if c["contact"]["phone"] == sender]
    if not mine:
        return []
    return list(local_stack.request("GET", f"/v1/conversations/{mine[0]['id']}/messages", token=token).json()["items"])


def channel(local_stack: LocalStackClient, body: dict[str, Any]) -> str:
    token = local_stack.token(tenant_id=f"say-{secrets.token_hex(4)}", admin=True)
    response = local_stack.request("POST", "/v1/channels", token=token, json=body)
    assert response.status_code == 201, response.text
    return token


def test_say_to_a_twilio_number_with_media(local_stack: LocalStackClient, tmp_path: Path) -> None:
    number = f"+1415{secrets.randbelow(10**7):07d}"
    token = channel(local_stack, {"provider": "twilio", "name": "Say", "phone_number": number,
                                  "account_sid": "AC" + secrets.token_hex(16),
                                  "auth_token": "say-twilio-token-" + secrets.token_hex(8)})
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)

    text = say(local_stack, "--to", number, "--text", "Hello from make say", "--from", "+15550101010")
    media = say(local_stack, "--to", number, "--text", "a photo", "--from", "+15550101010", "--media", str(photo))

    assert text.returncode == 0, text.stdout + text.stderr
    assert media.returncode == 0, media.stdout + media.stderr
    messages = wait_for(lambda: [m for m in inbox(local_stack, token, "+15550101010")
                                 if m["media"] and m["media"][0]["status"] == "stored"], "the photo stored")
    assert messages[0]["text"] == "a photo" and messages[0]["media"][0]["content_type"] == "image/png"
    assert "Hello from make say" in [m["text"] for m in inbox(local_stack, token, "+15550101010")]


def test_say_to_a_meta_phone_number_id_with_media(local_stack: LocalStackClient, tmp_path: Path) -> None:
    phone_number_id = str(10**14 + secrets.randbelow(10**14))
    token = channel(local_stack, {"provider": "meta", "name": "Say", "phone_number_id": phone_number_id,
                                  "business_account_id": "419561257915477", "display_phone_number": "+15550783881",
                                  "access_token": "EAAG-say-" + secrets.token_hex(12),
                                  "app_secret": "say-app-secret-" + secrets.token_hex(12)})
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)

    text = say(local_stack, "--to", phone_number_id, "--text", "Olá from Meta", "--from", "+15550102020")
    media = say(local_stack, "--to", phone_number_id, "--text", "caption", "--from", "+15550102020",
                "--media", str(photo))

    assert text.returncode == 0, text.stdout + text.stderr
    assert media.returncode == 0, media.stdout + media.stderr
    stored = wait_for(lambda: [m for m in inbox(local_stack, token, "+15550102020")
                               if m["media"] and m["media"][0]["status"] == "stored"], "the photo stored")
    assert stored[0]["type"] == "image" and stored[0]["text"] == "caption"
    assert "Olá from Meta" in [m["text"] for m in inbox(local_stack, token, "+15550102020")]


def test_say_to_an_unknown_number_explains(local_stack: LocalStackClient) -> None:
    result = say(local_stack, "--to", "+14150000000", "--text", "anyone?")

    assert result.returncode != 0
    assert "no active" in result.stderr and "channel page" in result.stderr
