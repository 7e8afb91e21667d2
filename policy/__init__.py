"""Cedar policy evaluation for the four rails (public surface; the rest is internal).

engine = PolicyEngine.load(config)                  # default pack, or [policy] dir
book = ApprovalBook.rebuild(config, ledger_records)  # approvals are derived from events
decisions = engine.evaluate(events, approvals=book, mode="detect")
"""

from policy._approvals import ApprovalBook, ApprovalRequest
from policy._decision import SEVERITIES, ApprovalCheck, Decision, Reason
from policy._engine import PolicyEngine
from policy._pack import DEFAULT_PACK_DIR, PolicyInfo
from policy._replay import ReplayChange, ReplayReport, replay
from policy._testing import PolicyTestReport, TestFailure, run_policy_tests

__all__ = [
    "DEFAULT_PACK_DIR",
    "SEVERITIES",
    "ApprovalBook",
    "ApprovalCheck",
    "ApprovalRequest",
    "Decision",
    "PolicyEngine",
    "PolicyInfo",
    "PolicyTestReport",
    "Reason",
    "ReplayChange",
    "ReplayReport",
    "TestFailure",
    "replay",
    "run_policy_tests",
]
