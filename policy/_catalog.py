"""Mapping an event's action onto the pack's Cedar actions (the catalog).

Cedar needs every action of a request declared in the schema. Adapters produce open-ended
names (``iam:AttachRolePolicy``, ``k8s:delete:deployments``), so an event action is resolved:

1. a *refinement* from ``catalog.json`` may rename it from an attribute
   (``sql:Delete`` with ``sql.where = "false"`` → ``sql:Delete:all-rows``);
2. an exact action declared in the schema wins;
3. else the most specific declared pattern (names with ``*``; most literal characters wins,
   ties broken by name);
4. else the action is *unknown*: it maps to the ``unknown.destructive`` placeholder in the
   environments of ``[policy] unknown_destructive_in`` and to ``unknown.other`` elsewhere. The
   real name always travels in the request context (``context.action_name``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = ["Catalog", "Resolved"]

logger = logging.getLogger(__name__)

DESTRUCTIVE = "Destructive"


@dataclass(frozen=True)
class Resolved:
    """What an event action became."""

    cedar_action: str
    """The declared Cedar action used in the request."""
    groups: frozenset[str]
    """All groups of ``cedar_action`` (e.g. ``SchemaChange``, ``Destructive``, ``Change``)."""
    unknown: bool
    """The catalog does not know the action (it was mapped to a placeholder)."""

    @cached_property
    def destructive(self) -> bool:
        return DESTRUCTIVE in self.groups


class Catalog:
    """Resolves event actions against the actions a pack declares; memoised per distinct input."""

    def __init__(
        self,
        actions: Mapping[str, frozenset[str]],
        data: Mapping[str, Any],
        unknown_destructive_in: list[str],
    ) -> None:
        self._actions = dict(actions)
        self._unknown_destructive_in = frozenset(unknown_destructive_in)
        unknown = data["unknown"]
        self._unknown_destructive = Resolved(
            unknown["destructive"], self._actions[unknown["destructive"]], True
        )
        self._unknown_other = Resolved(unknown["other"], self._actions[unknown["other"]], True)
        self._refine: dict[str, list[tuple[str, str, str]]] = {}
        for r in data.get("refinements", ()):
            self._refine.setdefault(r["action"], []).append((r["attribute"], r["equals"], r["as"]))
        patterns = [name for name in self._actions if "*" in name]
        # most literal characters first: `k8s:delete:*` beats `*:Delete*`
        patterns.sort(key=lambda p: (-len(p.replace("*", "")), p))
        self._patterns = [
            (re.compile(".*".join(map(re.escape, p.split("*"))) + r"\Z", re.DOTALL), p) for p in patterns
        ]
        self._known: dict[str, Resolved | None] = {}

    def _lookup(self, action: str) -> Resolved | None:
        if action in self._known:
            return self._known[action]
        found: Resolved | None = None
        if action in self._actions and "*" not in action:
            found = Resolved(action, self._actions[action], False)
        else:
            for rx, name in self._patterns:
                if rx.match(action):
                    found = Resolved(name, self._actions[name], False)
                    break
        if len(self._known) > 100_000:  # hostile input must not grow memory without bound
            self._known.clear()
        self._known[action] = found
        return found

    def refine(self, action: str, attributes: Mapping[str, str]) -> str:
        """The action after ``catalog.json`` refinements (the original when none applies)."""
        rules = self._refine.get(action)
        if rules:
            for attribute, equals, target in rules:
                if attributes.get(attribute) == equals:
                    return target
        return action

    def resolve(self, action: str, attributes: Mapping[str, str], environment: str) -> Resolved:
        """Resolve an event's action (see the module docstring for the order)."""
        found = self._lookup(self.refine(action, attributes))
        if found is not None:
            return found
        if environment in self._unknown_destructive_in:
            return self._unknown_destructive
        return self._unknown_other

    def groups_of(self, action: str) -> frozenset[str]:
        """The groups of a declared action (empty for an undeclared one)."""
        return self._actions.get(action, frozenset())
