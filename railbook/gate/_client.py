"""An HTTP client for the gate (what ``railbook gate`` and ``railbook approve`` use).

Every transport failure — refused connection, timeout, a 5xx — is ``GateUnreachableError`` (the
hook then fails closed or open by ``[gate]``); a 4xx is ``GateRequestError`` carrying the server's
``{"error", "message"}``.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx

from railbook.gate._answer import ApprovalReceipt, GateAnswer, RequestStatus
from railbook.gate._errors import GateRequestError, GateUnreachableError

__all__ = ["GateClient"]

logger = logging.getLogger(__name__)


def nodelay_transport() -> httpx.HTTPTransport:
    """A transport with TCP_NODELAY: httpx writes a POST's headers and body separately, and on a
    kept-alive connection Nagle's algorithm holds the body back until the server's delayed ACK
    (~40 ms on Linux) — measured as 56 ms per gate request instead of 12 ms."""
    return httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])


class GateClient:
    """``POST /v1/gate``, ``POST /v1/approvals``, ``GET /v1/requests/{id}`` over HTTP."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport or nodelay_transport()
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise GateUnreachableError(f"no answer from {self.url} within the timeout ({exc})") from exc
        except httpx.TransportError as exc:
            raise GateUnreachableError(f"cannot connect to {self.url}: {exc}") from exc
        if resp.status_code >= 500:
            raise GateUnreachableError(f"{self.url}{path} answered {resp.status_code}: {resp.text[:300]}")
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if resp.status_code >= 400:
            code = doc.get("error", "error") if isinstance(doc, dict) else "error"
            message = doc.get("message", resp.text[:300]) if isinstance(doc, dict) else resp.text[:300]
            raise GateRequestError(
                f"{method} {path}: {resp.status_code} {code}: {message}",
                status=resp.status_code,
                code=str(code),
            )
        if not isinstance(doc, dict):
            raise GateUnreachableError(f"{self.url}{path} answered {resp.status_code} without a JSON object")
        return doc

    def ask_hook(self, payload: dict[str, Any]) -> GateAnswer:
        """Ask about a Claude Code PreToolUse payload."""
        return GateAnswer.from_dict(self._call("POST", "/v1/gate", {"hook": payload}))

    def ask_event(self, event: dict[str, Any]) -> GateAnswer:
        """Ask about a proposed action in the canonical event shape."""
        return GateAnswer.from_dict(self._call("POST", "/v1/gate", {"event": event}))

    def approve(
        self,
        request_id: str,
        *,
        decision: str = "grant",
        expires_in: float | None = None,
        digest: str | None = None,
        note: str | None = None,
    ) -> ApprovalReceipt:
        body: dict[str, Any] = {"request_id": request_id, "decision": decision}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if digest is not None:
            body["digest"] = digest
        if note:
            body["note"] = note
        return ApprovalReceipt.from_dict(self._call("POST", "/v1/approvals", body))

    def status(self, request_id: str) -> RequestStatus:
        return RequestStatus.from_dict(self._call("GET", f"/v1/requests/{request_id}"))

    def pending(self) -> list[RequestStatus]:
        doc = self._call("GET", "/v1/requests")
        return [RequestStatus.from_dict(r) for r in doc.get("requests", [])]
