"""The one typed-error convention of the API.

Every expected failure is an `ApiError` whose code lands in the GraphQL error's `extensions.code`:

    NOT_FOUND         the object does not exist or is not visible to the caller
    BAD_USER_INPUT    an argument is malformed or violates a rule (extensions.field names it when known)
    UNAUTHENTICATED   no valid credentials (token, publishable key)
    FORBIDDEN         authenticated, but the policy denies the action or field
    CONFLICT          a uniqueness rule would be broken (duplicate handle, domain, …)
    UNAVAILABLE       a dependency (database, policy engine) cannot answer; nothing was returned or changed
    OUT_OF_STOCK      not enough units of a variant (extensions.variantId names it); nothing was reserved
    INVALID_STATE_TRANSITION  the object's state machine forbids the change (extensions.from, extensions.to)
    PAYMENT_FAILED    the payment provider refused or could not take the payment
    CREDIT_LIMIT_EXCEEDED  an order on account is above the company's available credit (extensions.available)
    PROMOTION_EXPIRED  a promotion code is outside its dates: extensions.reason says which (expired, or
                      not_started) and extensions.startsAt / endsAt the date
    PROMOTION_EXHAUSTED  a promotion code has no uses left (overall, or for this customer: extensions.limit says
                      which: usage_limit or per_customer_limit)
    CREDIT_HOLD       the company has an overdue invoice: no new order on account until it is paid
                      (extensions.overdueInvoices)
    RATE_LIMITED      too many requests (or too much query cost) for the key, principal or IP; extensions.retryAfter
                      gives the seconds to wait (HTTP 429 with Retry-After)
    INTERNAL_SERVER_ERROR  anything unexpected: the message is masked, the details are only in the logs
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

NO_STORE_CONTEXT = ("no store named: send the x-publishable-api-key header (or call through a store domain), "
                    "or a bearer token")


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    CONFLICT = "CONFLICT"
    UNAVAILABLE = "UNAVAILABLE"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INVALID_STATE_TRANSITION = "INVALID_STATE_TRANSITION"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CREDIT_LIMIT_EXCEEDED = "CREDIT_LIMIT_EXCEEDED"
    PROMOTION_EXPIRED = "PROMOTION_EXPIRED"
    PROMOTION_EXHAUSTED = "PROMOTION_EXHAUSTED"
    CREDIT_HOLD = "CREDIT_HOLD"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ApiError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": self.code.value, **extensions}


class NotFound(ApiError):
    code = ErrorCode.NOT_FOUND


class BadUserInput(ApiError):
    """`value`, when given, is the offending argument value: the argument holding it is then named in
    extensions.field (see cityos.graphql.core.inputs.ArgumentNames)."""

    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, message: str, *, value: Any = None, **extensions: Any) -> None:
        super().__init__(message, **extensions)
        self.value = value


class Unauthenticated(ApiError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(ApiError):
    code = ErrorCode.FORBIDDEN


class Conflict(ApiError):
    code = ErrorCode.CONFLICT


class Unavailable(ApiError):
    code = ErrorCode.UNAVAILABLE


class OutOfStock(ApiError):
    code = ErrorCode.OUT_OF_STOCK


class InvalidStateTransition(ApiError):
    code = ErrorCode.INVALID_STATE_TRANSITION


class PaymentFailed(ApiError):
    code = ErrorCode.PAYMENT_FAILED


class CreditLimitExceeded(ApiError):
    code = ErrorCode.CREDIT_LIMIT_EXCEEDED


class PromotionExpired(ApiError):
    code = ErrorCode.PROMOTION_EXPIRED


class PromotionExhausted(ApiError):
    code = ErrorCode.PROMOTION_EXHAUSTED
class CreditHold(ApiError):
    code = ErrorCode.CREDIT_HOLD
