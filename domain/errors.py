"""The domain error hierarchy.

Every error carries a stable machine-readable ``code`` and a human sentence;
edges (CLI, HTTP, Kafka) map the class onto their own status without parsing text.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every refusal the ledger can give."""

    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class InvalidInput(DomainError):
    """A value is malformed or out of range (maps to 422)."""

    code = "invalid_input"


class NotFound(DomainError):
    """The command names an aggregate that does not exist (404)."""

    code = "not_found"


class IllegalTransition(DomainError):
    """The aggregate's current state does not allow this command (409)."""

    code = "illegal_transition"


class ChannelConflict(DomainError):
    """Another partner holds channel protection for the conflict key (409)."""

    code = "channel_conflict"


class PartnerNotInGoodStanding(DomainError):
    """A suspended partner tried to act (409)."""

    code = "partner_suspended"


class ProtectedPartnerRequired(DomainError):
    """The protected sourcing partner cannot be removed while protection lasts (409)."""

    code = "protected_partner"


class InvalidAttribution(DomainError):
    """Attribution shares are not exact, non-negative and summing to 100 (422)."""

    code = "invalid_attribution"


class Forbidden(DomainError):
    """The actor may not issue this command on this aggregate (403)."""

    code = "forbidden"


class IdempotencyKeyReused(DomainError):
    """A command id was re-sent with a different command body (409)."""

    code = "idempotency_key_reused"


class ConcurrentModification(DomainError):
    """Retries were exhausted while others kept changing the same aggregates (409)."""

    code = "concurrent_modification"
