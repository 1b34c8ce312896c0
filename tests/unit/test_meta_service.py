"""Which secret may vouch for which number (decisions D8), with the storage replaced by an in-memory fake.

The bytes must verify under the secret bound to EVERY known channel they name: the channel's own app secret, or
the deployment's global META_APP_SECRET (which, being the operator's, vouches for every channel). A tenant's own
secret never vouches for another tenant's number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from gateway.config import Settings
from gateway.credentials import Secrets
from gateway.domain.channel import Channel, ChannelStatus, Provider, route_key_meta, route_key_verify
from gateway.domain.errors import BadRequest, Forbidden, InvalidSignature
from gateway.http.webhook import WebhookRequest
from gateway.services.meta_webhooks import MAX_UNKNOWN_BEFORE_VERIFIED, MetaWebhooks, query_params

from tests.meta_support import change_value, meta_bytes, notification, sign, status, text_message


def channel(tenant: str, number: str, verify_token: str | None = None) -> Channel:
    return Channel(
        tenant_id=tenant,
        channel_id=f"ch_{tenant}",
        provider=Provider.META,
        name="Main",
        phone_number="+15550783881",
        status=ChannelStatus.ACTIVE,
        created_at="2025-01-01T00:00:00.000Z",
        updated_at="2025-01-01T00:00:00.000Z",
        credentials_ciphertext=f"cipher-{tenant}",
        phone_number_id=number,
        verify_token=verify_token,
    )


@dataclass
class FakeChannels:
    routes: dict[str, Channel] = field(default_factory=dict)
    verified: list[tuple[str, str]] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)

    def resolve(self, key: str) -> Channel | None:
        self.looked_up.append(key)
        return self.routes.get(key)

    def forget(self, keys: Any) -> None:
        pass

    def mark_webhook_verified(self, channel: Channel, when: str) -> None:
        self.verified.append((channel.channel_id, when))


@dataclass
class FakeIngest:
    channels: FakeChannels = field(default_factory=FakeChannels)
    app_secrets: dict[str, str] = field(default_factory=dict)
    decrypted: list[str] = field(default_factory=list)
    stored: list[tuple[str, str]] = field(default_factory=list)
    applied: list[tuple[str, str, str]] = field(default_factory=list)
    fail_storage: bool = False

    def add(self, ch: Channel, app_secret: str | None) -> Channel:
        self.channels.routes[route_key_meta(ch.phone_number_id or "")] = ch
        if ch.verify_token:
            self.channels.routes[route_key_verify(ch.verify_token)] = ch
        if app_secret:
            self.app_secrets[ch.channel_id] = app_secret
        return ch

    def channel_for(self, key: str) -> Channel | None:
        return self.channels.resolve(key)

    def secrets(self, ch: Channel) -> Secrets:
        self.decrypted.append(ch.channel_id)
        values = {"access_token": "token"}
        if ch.channel_id in self.app_secrets:
            values["app_secret"] = self.app_secrets[ch.channel_id]
        return Secrets(values)

    def store_message(self, ch: Channel, message: Any, *, route_key: str) -> str | None:
        assert route_key == route_key_meta(ch.phone_number_id or "")
        if self.fail_storage:
            raise RuntimeError("DynamoDB is down")
        key = (ch.tenant_id, message.provider_message_id)
        if key in self.stored:
            return None
        self.stored.append(key)
        return "msg_1"

    def apply_status(self, ch: Channel, update: Any, *, route_key: str) -> str:
        assert route_key == route_key_meta(ch.phone_number_id or "")
        self.applied.append((ch.tenant_id, update.provider_message_id, update.status))
        return "applied"


def service(ingest: FakeIngest, global_secret: str = "") -> MetaWebhooks:
    return MetaWebhooks(ingest=ingest, settings=Settings(meta_app_secret=global_secret))  # type: ignore[arg-type]


def request(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"x-hub-signature-256": signature} if signature is not None else {}
    return WebhookRequest("POST", "/webhooks/meta", "", headers, body, "api")


def payload(*numbers: str) -> bytes:
    return meta_bytes(notification(*(change_value(n, messages=[text_message(f"wamid.{n}")]) for n in numbers)))


@pytest.fixture
def ingest() -> FakeIngest:
    fake = FakeIngest()
    fake.add(channel("alpha", "111"), "alpha-secret")
    fake.add(channel("beta", "222"), "beta-secret")
    fake.add(channel("gamma", "333"), None)  # relies on the deployment's global secret
    return fake


def test_per_channel_secret_accepts_its_own_number(ingest: FakeIngest) -> None:
    body = payload("111")
    receipt = service(ingest).receive(request(body, sign(body, "alpha-secret")))
    assert receipt.stored == 1
    assert ingest.stored == [("alpha", "wamid.111")]  # the tenant comes from the channel


def test_one_tenants_secret_cannot_vouch_for_another_tenants_number(ingest: FakeIngest) -> None:
    body = payload("222")
    with pytest.raises(InvalidSignature):
        service(ingest).receive(request(body, sign(body, "alpha-secret")))
    both = payload("111", "222")
    with pytest.raises(InvalidSignature):
        service(ingest).receive(request(both, sign(both, "alpha-secret")))
    assert ingest.stored == []


def test_a_tenants_secret_cannot_vouch_for_a_channel_bound_to_the_global_secret(ingest: FakeIngest) -> None:
    body = payload("333")
    with pytest.raises(InvalidSignature):
        service(ingest, "global-secret").receive(request(body, sign(body, "alpha-secret")))
    receipt = service(ingest, "global-secret").receive(request(body, sign(body, "global-secret")))
    assert receipt.stored == 1


def test_the_global_secret_vouches_for_every_channel_without_decrypting(ingest: FakeIngest) -> None:
    body = payload("111", "222", "333")
    receipt = service(ingest, "global-secret").receive(request(body, sign(body, "global-secret")))
    assert receipt.stored == 3
    assert ingest.decrypted == []  # no KMS involved on this path


def test_own_secret_still_works_when_a_global_one_exists(ingest: FakeIngest) -> None:
    body = payload("111")
    assert service(ingest, "global-secret").receive(request(body, sign(body, "alpha-secret"))).stored == 1


def test_unknown_numbers_are_counted_when_the_signature_is_ours(ingest: FakeIngest) -> None:
    body = payload("111", "999")
    receipt = service(ingest).receive(request(body, sign(body, "alpha-secret")))
    assert (receipt.stored, receipt.unknown_phone_number_ids) == (1, ["999"])

    only_unknown = payload("999")
    receipt = service(ingest, "global-secret").receive(request(only_unknown, sign(only_unknown, "global-secret")))
    assert (receipt.stored, receipt.unknown_phone_number_ids) == (0, ["999"])


def test_nothing_of_ours_verified_is_401(ingest: FakeIngest) -> None:
    body = payload("999")  # no known channel, no global secret: no secret of ours at all
    with pytest.raises(InvalidSignature):
        service(ingest).receive(request(body, sign(body, "anything")))
    no_own_secret = payload("333")  # the channel relies on a global secret this deployment lacks
    with pytest.raises(InvalidSignature):
        service(ingest).receive(request(no_own_secret, sign(no_own_secret, "")))


def test_lookups_end_at_the_first_known_channel_whose_secret_does_not_verify(ingest: FakeIngest) -> None:
    body = payload("222", "111", "999")
    with pytest.raises(InvalidSignature):
        service(ingest).receive(request(body, sign(body, "alpha-secret")))
    assert ingest.channels.looked_up == [route_key_meta("222")]


def test_unknown_numbers_looked_up_before_a_signature_verified_are_capped(ingest: FakeIngest) -> None:
    unknown = [str(9000 + i) for i in range(MAX_UNKNOWN_BEFORE_VERIFIED + 5)]
    body = payload(*unknown, "111")
    with pytest.raises(InvalidSignature):  # signed by alpha's secret, but named after too many unknown numbers
        service(ingest).receive(request(body, sign(body, "alpha-secret")))
    assert len(ingest.channels.looked_up) == MAX_UNKNOWN_BEFORE_VERIFIED
    assert ingest.stored == []

    ingest.channels.looked_up.clear()
    receipt = service(ingest, "global-secret").receive(request(body, sign(body, "global-secret")))
    assert (receipt.stored, len(receipt.unknown_phone_number_ids)) == (1, len(unknown))  # verified first: no cap


def test_a_verified_secret_lifts_the_cap_but_every_known_channel_must_still_verify(ingest: FakeIngest) -> None:
    unknown = [str(9000 + i) for i in range(MAX_UNKNOWN_BEFORE_VERIFIED + 5)]
    body = payload("111", *unknown)
    receipt = service(ingest).receive(request(body, sign(body, "alpha-secret")))
    assert (receipt.stored, len(receipt.unknown_phone_number_ids)) == (1, len(unknown))

    late_other_tenant = payload("111", *unknown, "222")
    with pytest.raises(InvalidSignature):
        service(ingest).receive(request(late_other_tenant, sign(late_other_tenant, "alpha-secret")))


@pytest.mark.parametrize("header", [None, "", "sha256=zz", "sha1=" + "a" * 40])
def test_missing_or_malformed_header_is_401_before_anything_is_parsed(ingest: FakeIngest, header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        service(ingest, "global-secret").receive(request(b"not json", header))


def test_malformed_json_is_400(ingest: FakeIngest) -> None:
    for secret in ("global-secret", ""):
        with pytest.raises(BadRequest):
            service(ingest, secret).receive(request(b"{not json", sign(b"{not json", "global-secret")))


def test_too_many_numbers_is_400(ingest: FakeIngest) -> None:
    body = meta_bytes(notification(*(change_value(str(1000 + i)) for i in range(101))))
    with pytest.raises(BadRequest):
        service(ingest, "global-secret").receive(request(body, sign(body, "global-secret")))


def test_statuses_and_messages_in_one_notification(ingest: FakeIngest) -> None:
    body = meta_bytes(
        notification(change_value("111", messages=[text_message("wamid.in")], statuses=[status("wamid.out", "read")]))
    )
    receipt = service(ingest).receive(request(body, sign(body, "alpha-secret")))
    assert receipt.stored == 1
    assert receipt.statuses == {"applied": 1}
    assert ingest.applied == [("alpha", "wamid.out", "read")]


def test_storage_failure_propagates(ingest: FakeIngest) -> None:
    ingest.fail_storage = True
    body = payload("111")
    with pytest.raises(RuntimeError):
        service(ingest).receive(request(body, sign(body, "alpha-secret")))


# ------------------------------------------------------------------------------------------- verification
def test_verification_matches_an_active_meta_channel_and_records_it() -> None:
    fake = FakeIngest()
    fake.add(channel("alpha", "111", verify_token="verify-token-alpha"), "s")
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-token-alpha", "hub.challenge": "1158201444"}
    challenge, matched = service(fake).verify_subscription(params)
    assert (challenge, matched.channel_id) == ("1158201444", "ch_alpha")
    assert [c for c, _ in fake.channels.verified] == ["ch_alpha"]
    with pytest.raises(Forbidden):
        service(fake).verify_subscription({**params, "hub.verify_token": "verify-token-other"})
    assert len(fake.channels.verified) == 1


def test_query_params_refuse_repeated_hub_parameters() -> None:
    raw = "hub.mode=subscribe&hub.challenge=1&hub.verify_token=abcdefgh"
    assert query_params(raw) == {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "abcdefgh"}
    with pytest.raises(Forbidden):
        query_params(raw + "&hub.challenge=2")
    assert query_params("", {"hub.mode": "subscribe", "other": "x"}) == {"hub.mode": "subscribe"}
