"""What a command line does (``CommandFacts``), and a classifier's scored guess (``Guess``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.event import UNKNOWN, Resource

__all__ = ["CommandFacts", "Guess"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandFacts:
    """What a shell command does, as far as the command line alone tells."""

    action: str
    """Namespaced verb: ``sql:AlterTable``, ``k8s:delete:deployments``, ``terraform:Destroy``, …"""
    resource: Resource
    """Target: ``db://host/db``, ``k8s://context/ns/kind/name``, ``repo@branch``, ``cmd://<program>``."""
    digest: str
    """SHA-256 (hex) of the exact command text (UTF-8): what an approval with a digest must match."""
    redacted: str
    """The command with passwords, tokens, keys and card numbers replaced (safe to store and show)."""
    program: str | None = None
    """The program of the deciding segment (``psql``, ``kubectl``, …), ``None`` for an empty command."""
    attributes: dict[str, str] = field(default_factory=dict, hash=False)
    """Facts worth keeping: ``db.host``, ``sql.table``, ``kube.context``, ``git.force``, ``aws.profile``, …"""

    @property
    def data_classes(self) -> tuple[str, ...]:
        return self.resource.data_classes


@dataclass(frozen=True)
class Guess:
    rank: int
    action: str
    resource_id: str
    resource_type: str
    environment: str = UNKNOWN
    account: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
