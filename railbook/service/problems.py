"""Clear JSON error answers for the HTTP API: ``{"error": code, "message": text}``.

``ApiError`` is a Starlette ``HTTPException`` (so it works in any FastAPI app); the Railbook app
installs a handler that flattens it to the documented body. Messages name the input, what was
expected, what was found, and the fix — the same rule as ``core.errors``.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["ApiError", "error_body", "install_error_handlers"]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


class ApiError(HTTPException):
    """An HTTP error with a stable machine-readable ``code`` and a human ``message``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(status_code=status, detail=error_body(code, message, **extra), headers=headers)
        self.code = code
        self.message = message


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    body = detail if isinstance(detail, dict) else error_body(_code_for(exc.status_code), str(detail))
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in list(exc.errors())[:8]
    ]
    return JSONResponse(
        error_body("invalid-request", "request does not match the expected shape: " + "; ".join(problems)),
        status_code=422,
    )


def _code_for(status: int) -> str:
    return {
        400: "bad-request",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
        415: "unsupported-media-type",
        422: "invalid-request",
        503: "unavailable",
    }.get(status, "error")


def install_error_handlers(app: Any) -> None:
    """Make every HTTP error (ours and Starlette's 404/405) answer ``{"error", "message"}``."""
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(StarletteHTTPException, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
