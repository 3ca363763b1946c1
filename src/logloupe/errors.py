"""One exception tree and one JSON error body for the whole product.

    LogLoupeError                 500 internal
    ├── BadRequest                400 bad_request
    │   ├── QuerySyntaxError      400 query_syntax (carries the position)
    │   └── InvalidInput          400 invalid_input
    ├── Unauthorized              401 unauthorized
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not_found
    ├── PayloadTooLarge           413 payload_too_large
    ├── UnsupportedMedia          415 unsupported_media_type
    ├── TooManyRequests           429 too_many_requests (carries Retry-After)
    └── Unavailable               503 unavailable

The HTTP layer turns these into ``error_body`` responses in one handler; the CLI prints
``message`` and exits non-zero in one place.
"""

from __future__ import annotations

from typing import Any


class LogLoupeError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, **self.details)


class BadRequest(LogLoupeError):
    status = 400
    code = "bad_request"


class QuerySyntaxError(BadRequest):
    code = "query_syntax"

    def __init__(self, message: str, position: int, query: str = "") -> None:
        super().__init__(f"{message} at position {position}", position=position)
        self.position = position
        self.query = query


class InvalidInput(BadRequest):
    code = "invalid_input"


class Unauthorized(LogLoupeError):
    status = 401
    code = "unauthorized"


class Forbidden(LogLoupeError):
    status = 403
    code = "forbidden"


class NotFound(LogLoupeError):
    status = 404
    code = "not_found"


class PayloadTooLarge(LogLoupeError):
    status = 413
    code = "payload_too_large"

    def __init__(self, message: str, *, head: bytes = b"", **details: Any) -> None:
        super().__init__(message, **details)
        self.head = head  # the start of what was refused, for the quarantine; never in the error body


class UnsupportedMedia(LogLoupeError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(LogLoupeError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int = 1, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class Unavailable(LogLoupeError):
    status = 503
    code = "unavailable"


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The one error shape every endpoint returns: ``{"error": {"code", "message", ...details}}``."""
    return {"error": {"code": code, "message": message, **details}}
