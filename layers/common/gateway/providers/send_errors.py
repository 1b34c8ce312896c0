"""Send errors of both providers normalized into the contract's ``{code, provider_code, message, retryable}``.

One table per provider (documented in docs/errors.md; a unit test keeps the two in step). The rules, in order:

1. a provider error code found in the table → its normalized code and whether it is transient;
2. HTTP 401/403 → ``credentials_rejected`` (permanent);
3. HTTP 429 → ``rate_limited`` (transient: the request was refused, never processed);
4. HTTP 503 → ``provider_unavailable`` (transient: the service said it did not take the request);
5. any other 5xx → ``outcome_unknown``: the request reached the provider and it may have accepted the message
   before failing, so it is NOT retried (resending could deliver the message twice);
6. anything else (4xx) → ``provider_error`` (permanent).

``retryable`` means transient: the gateway retries it itself with backoff, and a client may try again later.
Only answers that prove the provider did not accept the message are transient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.domain.errors import (
    CredentialsRejected,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    SendOutcomeUnknown,
)


@dataclass(frozen=True)
class ErrorRule:
    code: str
    retryable: bool
    meaning: str


def _permanent(code: str, meaning: str) -> ErrorRule:
    return ErrorRule(code, False, meaning)


def _transient(code: str, meaning: str) -> ErrorRule:
    return ErrorRule(code, True, meaning)


TWILIO: dict[int, ErrorRule] = {
    20003: _permanent("credentials_rejected", "Authentication failed (account SID / auth token)"),
    20005: _permanent("credentials_rejected", "Account not active"),
    20429: _transient("rate_limited", "Too many concurrent requests (never processed)"),
    21211: _permanent("invalid_recipient", "Invalid 'To' phone number"),
    21212: _permanent("invalid_sender", "Invalid 'From' phone number"),
    21606: _permanent("invalid_sender", "'From' is not a message-capable number of this account"),
    21610: _permanent("recipient_blocked", "The recipient unsubscribed (STOP)"),
    21614: _permanent("invalid_recipient", "'To' is not a valid mobile number"),
    21617: _permanent("invalid_parameter", "Body exceeds the maximum length"),
    21620: _permanent("invalid_media", "Invalid media URL"),
    21656: _permanent("template_error", "ContentVariables is invalid"),
    63003: _permanent("invalid_recipient", "The channel could not find the 'To' address"),
    63007: _permanent("invalid_sender", "No WhatsApp sender for the 'From' address"),
    63014: _permanent("recipient_blocked", "Delivery blocked: the recipient blocked this sender"),
    63016: _permanent("outside_customer_service_window", "Free-form message outside the 24-hour window"),
    63017: _transient("rate_limited", "Account over its messages-per-second limit"),
    63018: _transient("rate_limited", "Rate limit exceeded for the WhatsApp sender"),
    63019: _permanent("invalid_media", "Media failed to download"),
    63024: _permanent("invalid_recipient", "Invalid message recipient"),
    63032: _permanent("marketing_experiment", "Recipient is part of a WhatsApp marketing experiment"),
    63049: _permanent("marketing_limit", "Meta chose not to deliver this marketing message"),
}

META: dict[int, ErrorRule] = {
    1: _transient("provider_unavailable", "API unknown error (temporary)"),
    2: _transient("provider_unavailable", "API service temporarily unavailable"),
    4: _transient("rate_limited", "Application request limit reached"),
    10: _permanent("credentials_rejected", "Permission denied"),
    100: _permanent("invalid_parameter", "Invalid parameter"),
    190: _permanent("credentials_rejected", "Access token expired or invalid"),
    200: _permanent("credentials_rejected", "Permission denied"),
    368: _permanent("account_restricted", "Temporarily blocked for policy violations"),
    80007: _transient("rate_limited", "WhatsApp Business Account rate limit reached"),
    130429: _transient("rate_limited", "Cloud API throughput reached"),
    130472: _permanent("marketing_experiment", "Recipient is part of a marketing experiment"),
    131000: _transient("provider_error", "Something went wrong (Meta: retry)"),
    131005: _permanent("credentials_rejected", "Access denied"),
    131008: _permanent("invalid_parameter", "Required parameter missing"),
    131009: _permanent("invalid_parameter", "Parameter value not valid"),
    131016: _transient("provider_unavailable", "Service unavailable"),
    131021: _permanent("invalid_recipient", "Recipient cannot be the sender"),
    131026: _permanent("undeliverable", "Message undeliverable (not on WhatsApp, old app, terms not accepted)"),
    131030: _permanent("invalid_recipient", "Recipient not in the allowed list (test number)"),
    131031: _permanent("account_restricted", "Business account locked"),
    131042: _permanent("account_restricted", "Business eligibility / payment issue"),
    131045: _permanent("invalid_sender", "Phone number not registered (certificate)"),
    131047: _permanent("outside_customer_service_window", "Re-engagement: more than 24 h since the user wrote"),
    131048: _permanent("spam_rate_limited", "Spam rate limit: too many messages from this number"),
    131049: _permanent("marketing_limit", "Meta chose not to deliver (per-user marketing limit)"),
    131051: _permanent("unsupported_message_type", "Unsupported message type"),
    131052: _permanent("invalid_media", "Media download error"),
    131053: _permanent("invalid_media", "Media upload error"),
    131056: _transient("pair_rate_limited", "Too many messages to the same user (pair rate limit)"),
    131057: _transient("provider_maintenance", "Business account in maintenance mode"),
    131062: _permanent(
        "recipient_id_not_supported",
        "This message cannot be sent to a business-scoped user id (e.g. authentication templates): a phone is needed",
    ),
    132000: _permanent("template_error", "Template parameter count mismatch"),
    132001: _permanent("template_error", "Template does not exist (name/language)"),
    132005: _permanent("template_error", "Template hydrated text too long"),
    132007: _permanent("template_error", "Template format character policy violated"),
    132012: _permanent("template_error", "Template parameter format mismatch"),
    132015: _permanent("template_error", "Template paused"),
    132016: _permanent("template_error", "Template disabled"),
    133010: _permanent("invalid_sender", "Phone number not registered"),
}


def _rule_for(table: dict[int, ErrorRule], code: Any) -> ErrorRule | None:
    try:
        return table.get(int(code))
    except (TypeError, ValueError):
        return None


def classify(
    provider_label: str, table: dict[int, ErrorRule], http_status: int, provider_code: Any, detail: str
) -> ProviderError:
    """The exception for one error answer. ``detail`` is the provider's own message (no secrets in it)."""
    code_text = str(provider_code) if provider_code not in (None, "") else str(http_status)
    rule = _rule_for(table, provider_code)
    if rule is None:
        if http_status in (401, 403):
            rule = _permanent("credentials_rejected", "")
        elif http_status == 429:
            rule = _transient("rate_limited", "")
        elif http_status == 503:
            rule = _transient("provider_unavailable", "")
        elif http_status >= 500:
            return SendOutcomeUnknown(
                f"{provider_label} failed with HTTP {http_status} after receiving the message; it may or may not "
                f"have been accepted, so it was not resent. {detail}".strip(),
                provider_code=code_text,
                retryable=False,
                http_status=http_status,
                normalized_code="outcome_unknown",
            )
        else:
            rule = _permanent("provider_error", "")
    message = f"{provider_label}: {detail}" if detail else f"{provider_label}: HTTP {http_status}"
    if rule.retryable:
        return ProviderUnavailable(
            message, provider_code=code_text, retryable=True, http_status=http_status, normalized_code=rule.code
        )
    cls = CredentialsRejected if rule.code == "credentials_rejected" else ProviderRejected
    return cls(message, provider_code=code_text, retryable=False, http_status=http_status, normalized_code=rule.code)


def twilio_error(http_status: int, data: dict[str, Any]) -> ProviderError:
    """Twilio's REST error body: ``{"code": 21211, "message": "...", "more_info": "...", "status": 400}``."""
    return classify("Twilio", TWILIO, http_status, data.get("code"), str(data.get("message") or "").strip())


def meta_error(http_status: int, data: dict[str, Any]) -> ProviderError:
    """Graph's error body: ``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}``."""
    raw = data.get("error")
    error: dict[str, Any] = raw if isinstance(raw, dict) else {}
    detail = str(error.get("message") or "").strip()
    error_data = error.get("error_data")
    extra = error_data.get("details") if isinstance(error_data, dict) else None
    if extra and str(extra) not in detail:
        detail = f"{detail} ({extra})" if detail else str(extra)
    return classify("Meta", META, http_status, error.get("code"), detail)
