"""Named domain errors. The HTTP layer maps each to a status code in one place (gateway.http.errors)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller may see. ``code`` is the contract's snake_case error code."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(DomainError):
    code = "unauthorized"


class InvalidSignature(Unauthorized):
    """A webhook whose provider signature is missing or wrong (or whose channel has no usable secret)."""

    code = "invalid_signature"


class BadRequest(DomainError):
    """A request body that cannot be parsed (webhooks: not a form / not JSON / missing required fields)."""

    code = "bad_request"


class PayloadTooLarge(BadRequest):
    code = "payload_too_large"


class Forbidden(DomainError):
    code = "forbidden"


class ValidationFailed(DomainError):
    code = "validation_error"


class NotFound(DomainError):
    code = "not_found"


class ChannelNotFound(NotFound):
    code = "channel_not_found"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class ChannelExists(DomainError):
    code = "channel_exists"


class Conflict(DomainError):
    code = "conflict"


class ProviderError(DomainError):
    """A provider answered with an error (or not at all). Carries the normalized error of the contract."""

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider_code: str | None = None,
        retryable: bool = False,
        http_status: int | None = None,
        normalized_code: str = "provider_error",
    ) -> None:
        super().__init__(message)
        self.provider_code = provider_code
        self.retryable = retryable
        self.http_status = http_status
        self.normalized_code = normalized_code

    def as_error(self) -> dict[str, object]:
        return {
            "code": self.normalized_code,
            "provider_code": self.provider_code,
            "message": self.message,
            "retryable": self.retryable,
        }


class CredentialsRejected(ProviderError):
    """The provider refused the channel's credentials (wrong/revoked token, unknown account)."""

    code = "credentials_rejected"


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


# ------------------------------------------------------------------------------------------------ sending
class OutsideServiceWindow(ValidationFailed):
    """A free-form message more than 24 h after the contact last wrote (templates are allowed)."""

    code = "outside_customer_service_window"


class IdempotencyConflict(Conflict):
    """The Idempotency-Key was used before with another request body."""

    code = "idempotency_conflict"


class IdempotencyInProgress(Conflict):
    """The first request with this Idempotency-Key is still running; the client should retry shortly."""

    code = "idempotency_in_progress"


class ChannelDisabled(Conflict):
    code = "channel_disabled"


class ProviderRejected(ProviderError):
    """The provider refused the message for good (HTTP 422 ``provider_rejected``, normalized error attached)."""

    code = "provider_rejected"


class SendOutcomeUnknown(ProviderUnavailable):
    """The request reached the provider but no answer came back (read timeout, dropped connection, a gateway
    5xx without a provider error): it may have been accepted, so it is never resent automatically."""
