"""The gate: stop destructive agent actions before they run (rail 3; see docs/design/gate.md).

    gate = Gate.in_process(pipeline)                # or Gate.over_writer(writer, config) in `railbook up`
    answer = gate.ask(proposed_event)               # allow / deny / ask, recorded in the ledger
    gate.approve(answer.request_id, approver="alice@example.com")
    gate.status(answer.request_id)                  # pending / approved / denied / used / expired

HTTP: ``router`` (``POST /v1/gate``, ``POST /v1/approvals``, ``GET /v1/requests/{id}``), mounted by
the service with ``install_gate(app, gate)``. Claude Code: ``run_hook`` (what ``railbook gate`` runs).
"""

from railbook.gate._answer import ApprovalReceipt, GateAnswer, NeededApproval, RequestStatus
from railbook.gate._client import GateClient
from railbook.gate._errors import (
    ApprovalRefusedError,
    GateRequestError,
    GateUnreachableError,
    UnknownRequestError,
)
from railbook.gate._gate import Backend, Gate, PipelineBackend, WriterBackend, new_request_id
from railbook.gate._hook import HookResult, hook_output, offline_class, run_hook
from railbook.gate._http import install_gate, router, standalone_app
from railbook.gate._proposal import proposal_from_event, proposal_from_hook, stamp_defaults
from railbook.gate._settings import GateSettings, gate_settings

__all__ = [
    "ApprovalReceipt",
    "ApprovalRefusedError",
    "Backend",
    "Gate",
    "GateAnswer",
    "GateClient",
    "GateRequestError",
    "GateSettings",
    "GateUnreachableError",
    "HookResult",
    "NeededApproval",
    "PipelineBackend",
    "RequestStatus",
    "UnknownRequestError",
    "WriterBackend",
    "gate_settings",
    "hook_output",
    "install_gate",
    "new_request_id",
    "offline_class",
    "proposal_from_event",
    "proposal_from_hook",
    "router",
    "run_hook",
    "stamp_defaults",
    "standalone_app",
]
