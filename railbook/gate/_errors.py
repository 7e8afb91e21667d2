"""Gate errors: ``core.errors.GateError`` with an HTTP status and a stable code.

GateError (core)
├── GateUnreachableError     the hook could not reach the gate (network, timeout, 5xx)
└── GateRequestError         the gate refused the input; ``status``/``code`` map to HTTP
    ├── UnknownRequestError  no gate request has that id (404)
    └── ApprovalRefusedError the approval breaks separation of duties, scope or state (403/409)
"""

from __future__ import annotations

from core.errors import GateError

__all__ = ["ApprovalRefusedError", "GateRequestError", "GateUnreachableError", "UnknownRequestError"]


class GateUnreachableError(GateError):
    """The gate did not answer (connection refused, timeout, server error)."""


class GateRequestError(GateError):
    """The gate refused the request; ``status`` is the HTTP status, ``code`` a stable machine code."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad-request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class UnknownRequestError(GateRequestError):
    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"no gate request {request_id!r}: check the id the hook printed "
            "(it looks like 'req-0123456789abcdef'), or ask again to get a new one",
            status=404,
            code="unknown-request",
        )
        self.request_id = request_id


class ApprovalRefusedError(GateRequestError):
    """An approval the gate will not record; ``code`` names the rule (``self-approval``, …)."""

    def __init__(self, message: str, *, code: str, status: int = 403) -> None:
        super().__init__(message, status=status, code=code)
