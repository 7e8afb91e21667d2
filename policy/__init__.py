"""Cedar policy evaluation for the four rails (public surface; the rest is internal)."""

from policy._decision import SEVERITIES, ApprovalCheck, Decision, Reason

__all__ = ["SEVERITIES", "ApprovalCheck", "Decision", "Reason"]
