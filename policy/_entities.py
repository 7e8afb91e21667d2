"""The Cedar entities the engine sends: built once per distinct value, trimmed, reused.

Cedar parses every entity of a set it is given (~2 µs, plus ~2.5 µs per attribute; an ``Event``
with its records ~25 µs) and clones a set ~0.25 µs per entity. ``Entities`` keeps, for the
engine's life (bounded; ``clear``):

- one ``Entity`` per principal, resource and per-event facts value, its JSON built once;
- variants with only the attributes a policy slice names (``slim``), for packs whose answers
  cannot depend on entity ids (``shared``);
- the entity set of the last Cedar call, which the next call extends with what is new
  (``entity_set``).

Every trimming leaves Cedar's answer unchanged: an attribute no policy names cannot be read
(Cedar has no way to enumerate or compare an entity's attributes without naming one), and in
``shared`` mode the pack names no entity but actions, so it cannot observe an id: an id seen
with other attributes becomes ``id#2`` and ids never clash. docs/design/policy.md, "Evaluation".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cedarpy

if TYPE_CHECKING:
    from core.config import Config
    from core.event import Actor, Resource
    from policy._pack import Pack

__all__ = ["Entities", "Entity"]

logger = logging.getLogger(__name__)

_PRINCIPAL_TYPE = {"agent": "Agent", "human": "Human", "pipeline": "Pipeline", "service": "Service"}
# An IAM user access key id: standing until someone deactivates it (session keys start ASIA).
_LONG_LIVED = re.compile(r"AKIA[0-9A-Z]{12,}\Z")
_ATTRIBUTION = ("on_behalf_of", "task", "prompt", "diff", "commit", "pull_request", "ticket")
#: entities kept in the reused entity set (cloning it costs ~0.25 µs per entity per call)
_STORE_LIMIT = 8192


@dataclass(eq=False, slots=True)
class Entity:
    """One Cedar entity as the engine sends it, built once and reused across batches."""

    serial: int
    """Unique per (type, id, attributes sent): the cache key for answers that involve it."""
    key: tuple[str, str]
    """(type, id): unique within one Cedar call."""
    uid: dict[str, str]
    """``{"type": ..., "id": ...}``, the form a request names it in."""
    json: str
    """The entity's Cedar JSON."""
    context: str | None = None
    """For an ``Event`` entity: the request context that refers to it."""
    own: bool = True
    """Sent by the engine (``False``: an action entity the schema's base set already holds)."""
    attrs: dict[str, Any] | None = None
    """Its attributes (for the per-slice variants)."""
    base_id: str | None = None
    """The id it stands for (``None``: named by serial, an ``Event``)."""
    slim: dict[int, Entity] | None = None
    """Per policy slice: the variant with only the attributes that slice's policies name."""
    source: tuple[Resource, bool] | None = None
    """For a resource key entity (slim mode): the resource and whether it is protected."""
    shape: int = 0
    """Equal for entities of one type with equal attributes, whatever their ids (0: a key-only
    resource entity, never sent). In ``shared`` mode Cedar cannot tell such entities apart."""


class Entities:
    """Builds, interns and trims the engine's entities; keeps the last entity set."""

    def __init__(
        self,
        config: Config,
        pack: Pack,
        *,
        keep: frozenset[str] | None,
        keeps: list[frozenset[str]],
        shared: bool,
        slim: bool,
        own_actions: bool,
        schema: cedarpy.Schema | None,
    ) -> None:
        self._config = config
        self._pack = pack
        self._keep = keep
        """Attributes any policy names (``None``: send all)."""
        self._keeps = keeps
        """Per policy slice, the attributes its policies name (``policy._slicing.Slicer.keeps``)."""
        self.shared = shared
        self.slim_mode = slim
        """Per-slice variants: a resource's own entity is then only a cache key (``source``)."""
        self._own_actions = own_actions
        self._schema = schema
        self._serial = 0
        self._interned: dict[tuple[str, str, str], Entity] = {}
        self._shapes: dict[tuple[str, str], int] = {}
        self._variants: dict[tuple[str, str], int] = {}
        self.principals: dict[tuple[str, str, str | None, str | None], Entity] = {}
        """By (id, kind, on_behalf_of, credential): all of an ``Actor`` that ``principal`` reads."""
        self.resources: dict[tuple[Resource, bool], Entity] = {}
        self.facts: dict[tuple[Any, ...], Entity] = {}
        self.actions: dict[str, Entity] = {}
        self._empty: cedarpy.Entities = (
            cedarpy.Entities.from_json_str("[]") if own_actions else pack.base_entities
        )
        self._store = self._empty
        """The entity set of the last Cedar call; the next call adds to it (``entity_set``)."""
        self._stored: dict[tuple[str, str], Entity] = {}

    def clear(self) -> None:
        """Forget every entity (they are rebuilt on demand)."""
        self._interned.clear()
        self._shapes.clear()
        self._variants.clear()
        self.principals.clear()
        self.resources.clear()
        self.facts.clear()
        self._store = self._empty
        self._stored.clear()

    def size(self) -> int:
        """The largest of the caches (for bounding memory)."""
        return max(len(self._interned), len(self.principals), len(self.resources), len(self.facts))

    # --- building ----------------------------------------------------------------------------------

    def entity(self, etype: str, eid: str | None, attrs: dict[str, Any], *, pruned: bool = False) -> Entity:
        """The one ``Entity`` for (type, id, attributes sent); ``eid=None`` names it by serial."""
        keep = self._keep
        if keep is not None and not pruned:
            attrs = {k: v for k, v in attrs.items() if k in keep}
        attrs_json = _encode(attrs)
        key = (etype, eid or "", attrs_json)
        hit = self._interned.get(key)
        if hit is not None:
            return hit
        self._serial += 1
        serial = self._serial
        base_id = eid
        if eid is None:
            eid = f"e{serial}"
        elif self.shared:
            # the same id with other attributes (an actor seen with two credentials) becomes
            # another entity, so that every entity ever sent has its own uid and entity sets can
            # be reused; ids are unobservable by a pack that names no entity (module docstring)
            n = self._variants.get((etype, eid), 0) + 1
            self._variants[(etype, eid)] = n
            if n > 1:
                eid = f"{eid}#{n}"
        uid_json = '{"type":' + _encode_str(etype) + ',"id":' + _encode_str(eid) + "}"
        shape = self._shapes.get((etype, attrs_json))
        if shape is None:  # numbered like serials, never reused (a ``clear`` does not reset them)
            shape = self._shapes[(etype, attrs_json)] = serial
        ent = Entity(
            serial,
            (etype, eid),
            {"type": etype, "id": eid},
            '{"uid":' + uid_json + ',"attrs":' + attrs_json + ',"parents":[]}',
            attrs=attrs,
            base_id=base_id,
            shape=shape,
        )
        if etype == "Event":
            # a string: cedarpy passes it through instead of re-encoding a dict
            ent.context = '{"event":{"__entity":' + uid_json + "}}"
        self._interned[key] = ent
        return ent

    def slim(self, ent: Entity, sl: int) -> Entity:
        """``ent`` with only the attributes the policies of slice ``sl`` name (what Cedar parses)."""
        slim = ent.slim
        if slim is None:
            slim = ent.slim = {}
        got = slim.get(sl)
        if got is None:
            keep = self._keeps[sl]
            if ent.source is not None:
                attrs = self._resource_attrs(*ent.source, keep)
            else:
                attrs = {k: v for k, v in (ent.attrs or {}).items() if k in keep}
            got = self.entity(ent.key[0], ent.base_id, attrs, pruned=True)
            slim[sl] = got
        return got

    def principal(self, actor: Actor, key: tuple[str, str, str | None, str | None]) -> Entity:
        """The principal entity of ``actor``, kept in ``principals`` under ``key``."""
        cfg = self._config
        cred = actor.credential
        attrs: dict[str, Any] = {
            "kind": actor.kind,
            "credential_kind": cfg.actor_kind(cred) if cred else "unknown",
            "long_lived_credential": bool(cred and _LONG_LIVED.match(cred)),
            "groups": ["approvers"] if cfg.is_approver(actor.id) else [],
        }
        if actor.on_behalf_of:
            attrs["on_behalf_of"] = actor.on_behalf_of
        if cred:
            attrs["credential"] = cred
        ent = self.entity(_PRINCIPAL_TYPE.get(actor.kind, "UnknownPrincipal"), actor.id, attrs)
        self.principals[key] = ent
        return ent

    def resource(self, res: Resource, protected: bool) -> Entity:
        key = (res, protected)
        if self.slim_mode:
            # a key for the answer cache, never sent itself: its per-slice variants are (slim)
            self._serial += 1
            ent = Entity(self._serial, ("Resource", res.id), {}, "", base_id=res.id, source=key)
        else:
            ent = self.entity("Resource", res.id, self._resource_attrs(res, protected, self._keep))
        self.resources[key] = ent
        return ent

    def _resource_attrs(self, res: Resource, protected: bool, keep: frozenset[str] | None) -> dict[str, Any]:
        """The resource's attributes, only those in ``keep`` (all for ``None``)."""
        attrs: dict[str, Any] = {}
        if keep is None or "type" in keep:
            attrs["type"] = res.type
        if keep is None or "environment" in keep:
            attrs["environment"] = res.environment
        if keep is None or "data_classes" in keep:
            attrs["data_classes"] = res.data_classes  # a tuple: encoded as a JSON array
        if keep is None or "protected" in keep:
            attrs["protected"] = protected
        if keep is None or "identity_kind" in keep:
            attrs["identity_kind"] = self._config.actor_kind(res.id)
        if res.account and (keep is None or "account" in keep):
            attrs["account"] = res.account
        return attrs

    def event_facts(self, facts: tuple[Any, ...]) -> Entity:
        """The ``Event`` entity for one tuple of per-event facts, in the order the engine builds
        them: action name, unknown action, source, mode, via pipeline, approval status, approval
        failures, attribution flags, data classes, failed, tool, gate bypass."""
        (action, unknown, source, mode, via_pipeline, status, failures, attribution, data_classes,
         failed, tool, bypass) = facts  # fmt: skip
        attrs: dict[str, Any] = {
            "action_name": action,
            "unknown_action": unknown,
            "source": source,
            "mode": mode,
            "via_pipeline": via_pipeline,
            "approval": {"status": status, "valid": status == "valid", "failures": list(failures)},
            "attribution": dict(zip(_ATTRIBUTION, attribution, strict=True)),
            "data_classes": list(data_classes),
            "failed": failed,
            "tool": tool,
            "gate_bypass": bypass,
        }
        ent = self.entity("Event", None, attrs)
        self.facts[facts] = ent
        return ent

    def action(self, action: str) -> Entity:
        """A request action with every group it is in as a parent (what a Cedar ``in`` reads)."""
        uid = {"type": "Action", "id": action}
        parents = ",".join(
            '{"type":"Action","id":' + _encode_str(g) + "}"
            for g in sorted(self._pack.actions.get(action, ()))
        )
        self._serial += 1
        ent = Entity(
            self._serial,
            ("Action", action),
            uid,
            '{"uid":' + _encode(uid) + ',"attrs":{},"parents":[' + parents + "]}",
            own=self._own_actions,
        )
        self.actions[action] = ent
        return ent

    # --- the entity set -----------------------------------------------------------------------------

    def entity_set(self, needed: dict[tuple[str, str], Entity]) -> cedarpy.Entities:
        """An entity set holding ``needed``.

        The set of the last call is extended with what is new, unless it grew large or a fresh
        set is cheaper (a call that needs a few entities, after calls that needed many: parsing
        an entity costs about as much as cloning 48). Outside ``shared`` mode every call gets a
        fresh set (ids are real there, and may mean other attributes in the next call).
        """
        stored = self._stored
        own = [e for e in needed.values() if e.own]
        new = [e for e in own if e.key not in stored]
        reused = len(own) - len(new)
        extra = len(stored) - reused
        # no clash is possible in a reused set: shared mode gives every entity its own uid
        fresh = not self.shared or len(stored) + len(new) > _STORE_LIMIT or extra > 48 * reused
        if fresh:
            new = own
            stored.clear()
        delta = "[" + ",".join(e.json for e in new) + "]"
        if not fresh:
            ents = self._store.with_added_json_str(delta, self._schema) if new else self._store
        elif self._own_actions:
            ents = cedarpy.Entities.from_json_str(delta, self._schema)
        else:
            ents = self._pack.base_entities.with_added_json_str(delta, self._schema)
        for e in new:
            stored[e.key] = e
        self._store = ents
        return ents


_encode_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _no_default(o: object) -> object:
    raise TypeError(f"cannot encode {type(o).__name__} in an entity")


def _make_encoder() -> Callable[[Any], str]:
    """Compact, key-sorted JSON; the C encoder called directly (``json.dumps`` builds one per call)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the _json accelerator
        return json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    encoder = make(None, _no_default, _encode_str, None, ":", ",", True, False, True)
    return lambda o: "".join(encoder(o, 0))


_encode = _make_encoder()
