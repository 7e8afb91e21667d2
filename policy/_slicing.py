"""Policy slicing: ask Cedar only the policies whose scope can match a request.

Cedar evaluates every policy of the set for every request (~1 µs each with the default pack,
before its conditions are read). A policy whose scope cannot match the request's principal type
and action — ``forbid (principal is Agent, action in Action::"GitPush", resource)`` for a human
reading a bucket — is never satisfied and never evaluated past its scope, so it can neither
determine the decision nor raise an evaluation error. Leaving it out gives the same decision,
the same determining policies and the same errors, by Cedar's semantics: a policy is satisfied
iff its scope *and* its conditions hold, and the scope is checked first.

A slice is the sub-set of policies for one (principal type, action) pair; pairs with the same
policies share one pre-parsed ``PolicySet``. Only scopes that can be decided from the principal
type and the action (with its groups) exclude a policy; anything else (an entity in the scope,
an operator this module does not know) keeps it, so an unfamiliar pack is sliced less, not wrongly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import cedarpy

from policy._pack import attr_names

__all__ = ["Slicer"]

logger = logging.getLogger(__name__)

#: the one resource type the engine sends
_RESOURCE_TYPE = "Resource"


class Slicer:
    """Pre-parsed policy sets per (principal type, action), built on first use."""

    def __init__(self, static: Mapping[str, Any], actions: Mapping[str, frozenset[str]]) -> None:
        self._static = dict(static)
        self._actions = actions
        self._by_request: dict[tuple[str, str], int] = {}
        self._by_ids: dict[frozenset[str], int] = {}
        self.sets: list[cedarpy.PolicySet] = []
        """The distinct slices' policy sets, by slice index."""
        self.keeps: list[frozenset[str]] = []
        """Per slice: every attribute name its policies read (``policy._pack.attr_names``)."""

    def slice_of(self, principal_type: str, action: str) -> int:
        """The index (into ``sets``) of the slice for ``principal_type`` doing ``action``."""
        got = self._by_request.get((principal_type, action))
        if got is not None:
            return got
        groups = self._actions.get(action, frozenset())
        ids = frozenset(
            pid for pid, est in self._static.items() if _may_match(est, principal_type, action, groups)
        )
        got = self._by_ids.get(ids)
        if got is None:
            got = len(self.sets)
            self.sets.append(
                cedarpy.PolicySet.from_json_str(
                    json.dumps(
                        {
                            "staticPolicies": {pid: self._static[pid] for pid in sorted(ids)},
                            "templates": {},
                            "templateLinks": [],
                        }
                    )
                )
            )
            self.keeps.append(frozenset(attr_names([self._static[pid] for pid in ids])))
            self._by_ids[ids] = got
            logger.debug("policy slice %d: %d of %d policies", got, len(ids), len(self._static))
        self._by_request[(principal_type, action)] = got
        return got


def _may_match(est: Mapping[str, Any], principal_type: str, action: str, groups: frozenset[str]) -> bool:
    """Whether the policy's scope can hold for this principal type and action (``True`` if unsure)."""
    return (
        _principal_may_match(est.get("principal"), principal_type)
        and _action_may_match(est.get("action"), action, groups)
        and _resource_may_match(est.get("resource"))
    )


def _principal_may_match(scope: Any, principal_type: str) -> bool:
    if not isinstance(scope, dict):
        return True
    op = scope.get("op")
    if op == "is":
        return bool(scope.get("entity_type") == principal_type)
    if op == "==":
        ent = scope.get("entity")
        return not (isinstance(ent, dict) and ent.get("type") != principal_type)
    return True  # All, in (ancestry we do not model here), slots, anything new


def _action_may_match(scope: Any, action: str, groups: frozenset[str]) -> bool:
    if not isinstance(scope, dict):
        return True
    op = scope.get("op")
    if op == "All":
        return True
    if op == "==":
        return _is_action(scope.get("entity"), {action})
    if op == "in":
        targets = {action} | groups
        if "entity" in scope:
            return _is_action(scope.get("entity"), targets)
        ents = scope.get("entities")
        if isinstance(ents, list):
            return any(_is_action(e, targets) for e in ents)
    return True


def _is_action(ent: Any, ids: set[str] | frozenset[str]) -> bool:
    """``ent`` is an action uid whose id is in ``ids``; ``True`` for anything else (unsure)."""
    if not isinstance(ent, dict) or ent.get("type") != "Action":
        return True
    return ent.get("id") in ids


def _resource_may_match(scope: Any) -> bool:
    if isinstance(scope, dict) and scope.get("op") == "is":
        return bool(scope.get("entity_type") == _RESOURCE_TYPE)
    return True
