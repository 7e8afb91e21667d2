"""The policy engine: canonical events in, explained decisions out (DESIGN.md, "Policy").

Hot path. One ``evaluate`` call turns a batch of events into Cedar requests and asks cedarpy
with pre-parsed handles (``PolicySet``, ``Schema``, ``Entities``): parsing is what makes naive
cedarpy use ~100x slower. What it costs, per request, and what the engine does about it
(docs/design/policy.md, "Evaluation"):

- Cedar evaluates every policy of the set (~1 µs each): only the policies whose scope can match
  the request's principal type and action are asked (``policy._slicing``; same answers).
- Cedar parses every entity it is given (~2 µs per attribute): principals, resources and the
  per-event facts are built once per distinct value, carry only the attributes some policy
  names, and are kept in the entity set of the previous call, which the next call extends.
- Identical decision inputs (same principal, action, resource and event-facts entities) are
  evaluated once, within a batch and across batches: Cedar's answer is a function of them. For a
  pack that names no entity, entities that differ only in their ids count as identical (Cedar
  cannot observe an id there): a stream over thousands of files and sessions asks ~100 requests.

Not thread-safe (nor is the ``ApprovalBook`` it updates): one thread evaluates.

Semantics are sequential even though Cedar is asked once: approval facts are computed in event
order before the Cedar call (an approval event earlier in the batch is visible to later events;
a grant consumed by an earlier event is ``already-used`` for later ones), and they enter each
request's context, so the batched answer equals the one-by-one answer.

Which answers spend a grant: in detect mode every event the grant covers (the action ran; a
deny for another rail does not undo it); in gate mode only a gate ``allow`` (a request refused
for another rail, e.g. missing attribution, leaves the grant for the corrected request). The
gate's answer is only known after Cedar, so a gate batch is cut after each request holding a
valid grant (one more Cedar call per such request; none for the common case).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cedarpy

from core.errors import PolicyError
from policy._approvals import ApprovalBook, Found
from policy._catalog import Catalog, Resolved
from policy._decision import SEVERITIES, ApprovalCheck, Decision, Reason
from policy._entities import Entities, Entity
from policy._pack import DEFAULT_PACK_DIR, Pack, PolicyInfo, load_pack
from policy._slicing import Slicer

if TYPE_CHECKING:
    from core.config import Config
    from core.event import CanonicalEvent

__all__ = ["PolicyEngine"]

logger = logging.getLogger(__name__)

Mode = Literal["detect", "gate"]

#: events per Cedar call at most; bounds the per-call entity delta
CHUNK = 4096
_NOT_NEEDED = ApprovalCheck("not-needed")


class PolicyEngine:
    """A loaded policy pack, ready to decide. Build it with ``PolicyEngine.load``."""

    def __init__(self, config: Config, pack: Pack, *, strict: bool = False, optimize: bool = True) -> None:
        self.config = config
        self.pack = pack
        self.version: str = pack.version
        """SHA-256 (hex) over schema + policies + catalog; recorded in every decision."""
        self.catalog = Catalog(pack.actions, pack.catalog, config.policy.unknown_destructive_in)
        # strict: validate every request and entity against the schema (tests); the hot path
        # skips it because the engine builds both itself and the pack was validated at load
        self._strict = strict
        self._reasons: dict[str, Reason] = {
            pid: info.reason() for pid, info in pack.policies.items() if info.effect == "forbid"
        }
        self._approvable = frozenset(pid for pid, info in pack.policies.items() if info.approvable)
        # optimize=False is the reference the tests compare against: every attribute, the whole
        # policy set, nothing shared across Cedar calls. Each optimisation gives the same answers:
        # - attributes the policies never name cannot change a decision: left out of the entities
        #   (strict mode sends them all, because the schema check wants every required attribute)
        self._keep: frozenset[str] | None = None if strict or not optimize else pack.referenced
        # - policies whose scope cannot match a request are not asked (policy._slicing)
        self._slicer = Slicer(pack.static, pack.actions) if optimize and pack.static else None
        # Cedar's answers, across batches: (principal, action, resource, event-facts) entity serials
        # -> index into _answer_list. A serial stands for one entity (type, id, attributes sent).
        self._answers: dict[tuple[int, str, int, int], int] = {}
        # shared mode: the same, keyed by the entities' shapes (``Entity.shape``: attributes, no id)
        self._answers_by_shape: dict[tuple[int, str, int, int], int] = {}
        self._answer_list: list[_Answer] = []
        self._answer_index: dict[tuple[str, str, str], int] = {}
        self._answer_by_text: dict[str, int] = {}
        self._decisions: dict[tuple[int, ApprovalCheck | None, bool, str], Decision] = {}
        # - outside strict mode the engine sends the request actions itself, each with all of its
        #   groups as parents, instead of cloning the schema's ~160 action entities per call (~55 µs)
        # - a pack that names no entity but actions cannot observe entity ids, nor entities other
        #   than the request's own: answers and entity sets are shared across calls, an id seen
        #   with other attributes gets a variant id, and each request's entities carry only the
        #   attributes its slice's policies name. A pack that does (``principal == Agent::"x"``,
        #   ``Resource::"x".environment``) gets real ids, a fresh entity set per Cedar call, and
        #   a call is cut before an id would clash (policy._entities)
        self._shared = optimize and not pack.names_entities
        self._entities = Entities(
            config,
            pack,
            keep=self._keep,
            keeps=self._slicer.keeps if self._slicer is not None else [],
            shared=self._shared,
            slim=self._shared and self._keep is not None and self._slicer is not None,
            own_actions=optimize and not strict,
            schema=pack.schema if strict else None,
        )

    @classmethod
    def load(
        cls, config: Config, *, pack_dir: Path | None = None, strict: bool = False, optimize: bool = True
    ) -> PolicyEngine:
        """Load ``pack_dir``, else ``[policy] dir``, else the default pack shipped in the package.

        ``strict`` validates every request and entity against the schema (tests). ``optimize=False``
        evaluates the plain way (every attribute, the whole policy set, no answers shared between
        Cedar calls): the reference the optimised engine is tested against; the decisions are equal.

        Raises ``PolicyLoadError`` (naming file, line and problem) for a pack that does not parse
        or validate.
        """
        directory = (
            Path(pack_dir) if pack_dir else Path(config.policy.dir) if config.policy.dir else DEFAULT_PACK_DIR
        )
        return cls(config, load_pack(directory), strict=strict, optimize=optimize)

    @property
    def policies(self) -> dict[str, PolicyInfo]:
        """Every policy of the pack by id, with file, line and annotations."""
        return self.pack.policies

    # --- building requests --------------------------------------------------------------------------

    def clear_cache(self) -> None:
        """Forget every cached entity and Cedar answer (they are rebuilt on demand).

        Decisions do not depend on the cache; benchmarks call this to measure a cold engine.
        """
        self._entities.clear()
        self._answers.clear()
        self._answers_by_shape.clear()
        self._answer_list.clear()
        self._answer_index.clear()
        self._answer_by_text.clear()
        self._decisions.clear()

    def _cache_full(self) -> bool:
        return (
            max(len(self._answers), len(self._answer_by_text), len(self._decisions), self._entities.size())
            > _CACHE_LIMIT
        )

    def _protected(self, attributes: dict[str, str]) -> bool:
        if not attributes:
            return False
        if attributes.get("git.protected") == "true":
            return True
        ref = attributes.get("git.ref")
        return bool(ref) and self.config.is_protected_branch(ref)

    # --- evaluating ------------------------------------------------------------------------------------

    def evaluate(
        self,
        events: Sequence[CanonicalEvent],
        *,
        approvals: ApprovalBook,
        mode: Mode = "detect",
        known: Sequence[Decision | None] | None = None,
    ) -> list[Decision]:
        """Decide every event, in order; records grants, uses and gate requests in ``approvals``.

        ``known`` (detect mode): per event, a decision from ``prejudge`` or ``None``. A known
        decision is taken as it is when it was made by this pack (same ``version``) and the event's
        action does not resolve destructive here either; an approval event among them is still
        recorded in ``approvals`` at its place in the order. Every other event is decided here.
        """
        if mode not in ("detect", "gate"):
            raise PolicyError(f"evaluate: mode must be 'detect' or 'gate', got {mode!r}")
        if known is None:
            return self._decide(events, approvals, mode)
        if mode != "detect" or len(known) != len(events):
            raise PolicyError(
                f"evaluate: known decisions are for detect mode, one per event (mode {mode!r}, "
                f"{len(known)} known for {len(events)} events)"
            )
        out: list[Decision | None] = [None] * len(events)
        waiting: list[int] = []

        def decide_waiting() -> None:
            if waiting:
                decided = self._decide([events[i] for i in waiting], approvals, mode)
                for i, d in zip(waiting, decided, strict=True):
                    out[i] = d
                waiting.clear()

        for i, (ev, d) in enumerate(zip(events, known, strict=True)):
            if d is None or d.policy_version != self.version or d.mode != "detect" or self._destructive(ev):
                waiting.append(i)
                continue
            if ev.approval is not None:
                decide_waiting()  # the events before it must not see this approval
                approvals.record_approval(ev)
            out[i] = d
        decide_waiting()
        return out  # type: ignore[return-value]  # every slot is filled

    def touches_approvals(self, event: CanonicalEvent, mode: Mode = "detect") -> bool:
        """Whether deciding ``event`` may read or change an ``ApprovalBook``: in gate mode always
        (requests, gate links); in detect mode for an approval event and for an action that
        resolves destructive. Deciding any other event is a function of the event, the pack and
        the config alone (``prejudge``), so deciding it twice — a duplicate — changes nothing."""
        return mode != "detect" or event.approval is not None or self._destructive(event)

    def _destructive(self, event: CanonicalEvent) -> bool:
        """Whether ``event``'s action resolves destructive: only such a decision reads or changes
        the approval book (looks up, uses or links a grant)."""
        return self.catalog.resolve(event.action, event.attributes, event.resource.environment).destructive

    def prejudge(self, events: Sequence[CanonicalEvent]) -> list[Decision | None]:
        """Detect-mode decisions of the events no approval state can change; ``None`` for the rest.

        Only an event whose action resolves destructive reads or changes the approval book (looks
        up, uses or links a grant); an approval event is recorded there, which does not change its
        own decision. So every other event's decision is a function of the event, the pack and the
        config alone, and can be made anywhere that has them: serve's consumer process decides
        these beside serve, which then decides only the rest, in order (``evaluate(known=...)``).
        """
        picked = [i for i, ev in enumerate(events) if not self._destructive(ev)]
        out: list[Decision | None] = [None] * len(events)
        if picked:
            scratch = ApprovalBook(self.config)  # takes the approval events; nothing reads it back
            decided = self._decide([events[i] for i in picked], scratch, "detect")
            for i, d in zip(picked, decided, strict=True):
                out[i] = d
        return out

    def _decide(
        self, events: Sequence[CanonicalEvent], approvals: ApprovalBook, mode: Mode
    ) -> list[Decision]:
        out: list[Decision] = []
        for start in range(0, len(events), CHUNK):
            chunk = events[start : start + CHUNK]
            while chunk:
                if self._cache_full():
                    self.clear_cache()  # hostile or very varied input must not grow memory without bound
                done, decided = self._evaluate_chunk(chunk, approvals, mode)
                out.extend(decided)
                chunk = chunk[done:]
        return out

    def evaluate_one(
        self, event: CanonicalEvent, *, approvals: ApprovalBook, mode: Mode = "detect"
    ) -> Decision:
        """``evaluate`` for one event."""
        return self.evaluate([event], approvals=approvals, mode=mode)[0]

    def _evaluate_chunk(
        self, events: Sequence[CanonicalEvent], approvals: ApprovalBook, mode: Mode
    ) -> tuple[int, list[Decision]]:
        """Decide a prefix of ``events`` with at most one Cedar call; returns (events decided, decisions).

        A request whose (principal, action, resource, event-facts) entities were decided before,
        in this batch or an earlier one, reuses that answer: Cedar's answer is a function of the
        policy set and exactly those entities (they have no parents; the action entities are fixed).
        In shared mode, so does a request whose entities have the same types and attributes sent
        as one decided before (``Entity.shape``): such a pack cannot observe their ids.

        The prefix ends early (a) in gate mode, after a request that holds a valid grant: a grant
        is spent only by a gate ``allow``, known after Cedar answers, so later requests then see
        whether it was spent, exactly as one-by-one evaluation would; (b) before an event whose
        principal or resource has the id of another entity already in this call's entity set but
        other attributes (the same actor seen with two credentials): every entity keeps its real id.
        """
        resolve = self.catalog.resolve
        cached = self._answers
        shared = self._shared
        ents = self._entities
        slim_mode = ents.slim_mode
        principals = ents.principals
        resources = ents.resources
        facts_cache = ents.facts
        actions = ents.actions
        detect = mode == "detect"
        needed: dict[tuple[str, str], Entity] = {}
        requests: list[dict[str, Any]] = []
        slices: list[int] = []
        slicer = self._slicer
        pending: dict[tuple[int, str, int, int], int] = {}
        by_shape = self._answers_by_shape
        pending_shapes: dict[tuple[int, str, int, int], int] = {}
        # per event: answer index (>= 0) or -1 - request index; the grant found; the resolution
        plan: list[tuple[int, Found | None, Resolved]] = []

        for ev in events:
            res = ev.resource
            attributes = ev.attributes
            actor = ev.actor
            # not the Actor itself: its session (a new one per agent run) is no attribute
            pkey = (actor.id, actor.kind, actor.on_behalf_of, actor.credential)
            pent = principals.get(pkey) or ents.principal(actor, pkey)
            rkey = (res, bool(attributes) and self._protected(attributes))
            rent = resources.get(rkey) or ents.resource(*rkey)
            if (
                not shared
                and plan
                and (needed.get(pent.key, pent) is not pent or needed.get(rent.key, rent) is not rent)
            ):
                break  # an id clash in this entity set: decide this event in the next Cedar call
            if ev.approval is not None:
                approvals.record_approval(ev)
            resolved = resolve(ev.action, attributes, res.environment)
            found: Found | None = None
            link, bypass = None, False
            if resolved.destructive:
                found = approvals.find(ev, mode)
                if found.grant is not None and detect:
                    # it already ran, and the approval was for this run: spent even when another
                    # rail flags the event (one approval, one run)
                    approvals.use(found.grant, ev.event_id, mode)
                if detect and res.environment != "dev" and approvals.gates.watches(ev):
                    link = approvals.gates.find(ev)  # policy._bypass: the gate request this execution follows
                    bypass = link is None
                    if link is not None and link.grant_request and found.grant is None:
                        linked = approvals.linked_grant(link.grant_request)
                        if linked is not None:
                            found = Found(linked, 1, ())
                            approvals.use(linked, ev.event_id, mode)
            c = ev.change
            attribution = (
                bool(actor.on_behalf_of),
                bool(c.task),
                bool(c.prompt_sha256),
                bool(c.diff_sha256),
                bool(c.commit),
                bool(c.pull_request),
                bool(c.ticket),
            )
            if link is not None:  # an audit record cannot carry what the gate request did
                attribution = tuple(x or y for x, y in zip(attribution, link.attribution, strict=True))  # type: ignore[assignment]
            status, failures = ("none", ()) if found is None else (found.status, found.failures)
            facts = (
                ev.action,
                resolved.unknown,
                ev.source,
                mode,
                pent.key[0] == "Pipeline",
                status,
                failures,
                attribution,
                res.data_classes,
                bool(attributes.get("error_code")) if attributes else False,
                attributes.get("tool", "") if attributes else "",
                bypass,
            )
            fent = facts_cache.get(facts) or ents.event_facts(facts)
            key = (pent.serial, resolved.cedar_action, rent.serial, fent.serial)
            slot = cached.get(key)
            if slot is None:
                i = pending.get(key)
                if i is not None:
                    slot = -1 - i
                else:
                    sl = slicer.slice_of(pent.key[0], resolved.cedar_action) if slicer else 0
                    if slim_mode:
                        ps = (pent.slim and pent.slim.get(sl)) or ents.slim(pent, sl)
                        rs = (rent.slim and rent.slim.get(sl)) or ents.slim(rent, sl)
                        fs = (fent.slim and fent.slim.get(sl)) or ents.slim(fent, sl)
                    else:
                        ps, rs, fs = pent, rent, fent
                    # what Cedar is asked, ids left out: in shared mode the pack cannot observe an
                    # id, so entities with equal attributes get equal answers (the same agent on
                    # another file, another session of the same role)
                    shape = (ps.shape, resolved.cedar_action, rs.shape, fs.shape) if shared else None
                    slot = by_shape.get(shape) if shape is not None else None
                    if slot is not None:
                        if len(cached) <= _CACHE_LIMIT:
                            cached[key] = slot
                    else:
                        i = pending_shapes.get(shape) if shape is not None else None
                        if i is None:
                            i = len(requests)
                            if shape is not None:
                                pending_shapes[shape] = i
                            needed[ps.key] = ps
                            needed[rs.key] = rs
                            needed[fs.key] = fs
                            aent = actions.get(resolved.cedar_action) or ents.action(resolved.cedar_action)
                            needed[aent.key] = aent
                            requests.append(
                                {
                                    "principal": ps.uid,
                                    "action": aent.uid,
                                    "resource": rs.uid,
                                    "context": fs.context,
                                }
                            )
                            slices.append(sl)
                        pending[key] = i
                        slot = -1 - i
            plan.append((slot, found, resolved))
            if not detect and found is not None and found.grant is not None:
                break

        answered: list[int] = []
        if requests:
            answered = self._ask_cedar(requests, slices, needed)
            if self._shared and len(cached) <= _CACHE_LIMIT:
                for key, i in pending.items():
                    cached[key] = answered[i]
                for shape, i in pending_shapes.items():
                    by_shape[shape] = answered[i]
        answer_list = self._answer_list
        decisions = self._decisions
        out: list[Decision] = []
        for ev, (slot, found, resolved) in zip(events[: len(plan)], plan, strict=True):
            a = slot if slot >= 0 else answered[-1 - slot]
            answer = answer_list[a]
            check: ApprovalCheck | None = None
            if resolved.destructive and found is not None:
                # the approval facts matter where an approvable policy fired or a grant was used
                check = found.to_check() if found.grant is not None or answer.any_approvable else _NOT_NEEDED
            dk = (a, check, resolved.unknown, mode)
            d = decisions.get(dk)
            if d is None:
                d = self._decision(answer, check, resolved, mode)
                decisions[dk] = d
            if mode == "gate":
                if d.gate == "allow" and found is not None and found.grant is not None:
                    approvals.use(found.grant, ev.event_id, mode)  # a refused request leaves it unspent
                elif d.gate == "ask":
                    approvals.record_request(ev)
                approvals.gates.record(ev, d)
            out.append(d)
        return len(plan), out

    def _ask_cedar(
        self, requests: list[dict[str, Any]], slices: list[int], needed: dict[tuple[str, str], Entity]
    ) -> list[int]:
        """Ask Cedar (one entity set; one call per policy slice); returns, per request, the index
        of its answer in ``_answer_list``."""
        schema = self.pack.schema if self._strict else None
        try:
            ents = self._entities.entity_set(needed)
            if self._slicer is None:
                raw = _cedar_batch(requests, self.pack.policy_set, ents, schema)
            else:
                sets = self._slicer.sets
                groups: dict[int, list[int]] = {}
                for i, sl in enumerate(slices):
                    groups.setdefault(sl, []).append(i)
                raw = [""] * len(requests)
                for sl, idx in groups.items():
                    texts = _cedar_batch([requests[i] for i in idx], sets[sl], ents, schema)
                    for i, text in zip(idx, texts, strict=True):
                        raw[i] = text
        except (ValueError, TypeError) as exc:
            raise PolicyError(
                f"cedar evaluation failed for a batch of {len(requests)} requests: {exc}; "
                "this is a bug in the request builder or a schema the engine does not fit"
            ) from exc
        by_text = self._answer_by_text
        out: list[int] = []
        for text in raw:
            # everything before the timing metrics decides the answer: a dict lookup on it skips
            # parsing the same answer again (the regex costs several times more)
            cut = text.find(',"metrics"')
            head = text[:cut] if cut > 0 else None
            got = by_text.get(head) if head is not None else None
            if got is None:
                got = self._parse_answer(text)
                if head is not None:
                    by_text[head] = got
            out.append(got)
        return out

    def _parse_answer(self, text: str) -> int:
        m = _ANSWER.search(text)
        if m is None:  # pragma: no cover - cedarpy changed its answer format
            raise PolicyError(f"cedarpy answered in an unexpected format: {text[:200]!r}")
        k = (m.group(1), m.group(2), m.group(3))
        got = self._answer_index.get(k)
        if got is None:
            got = len(self._answer_list)
            self._answer_list.append(self._answer(*k))
            self._answer_index[k] = got
        return got

    def _answer(self, decision: str, reason_list: str, errors: str) -> _Answer:
        ids: list[str] = json.loads("[" + reason_list + "]")
        reasons = tuple(sorted((self._reasons[p] for p in ids if p in self._reasons), key=_reason_order))
        notes: tuple[str, ...] = ()
        if errors.strip():
            logger.warning("policy evaluation errors: %s", errors)
            notes = ("policy-error",)
        outcome: Literal["allow", "deny"] = "allow" if decision == "Allow" else "deny"
        if outcome == "deny" and not reasons:
            notes = (*notes, "no-permit")
        approvable = [r.policy_id in self._approvable for r in reasons]
        return _Answer(outcome, reasons, bool(reasons) and all(approvable), any(approvable), notes)

    def _decision(
        self,
        answer: _Answer,
        check: ApprovalCheck | None,
        resolved: Resolved,
        mode: Mode,
    ) -> Decision:
        gate: Literal["allow", "deny", "ask"] | None = None
        if mode == "gate":
            if answer.outcome == "allow":
                gate = "allow"
            elif answer.approvable_only and not (check is not None and "denied" in check.failures):
                gate = "ask"  # a valid approval would allow it
            else:
                gate = "deny"
        notes = answer.notes
        if resolved.unknown:
            notes = (*notes, "unknown-action")
        return Decision(
            outcome=answer.outcome,
            reasons=answer.reasons,
            policy_version=self.version,
            approval=check,
            mode=mode,
            gate=gate,
            notes=tuple(sorted(set(notes))),
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    """Cedar's answer to one request, with the pack's annotations looked up."""

    outcome: Literal["allow", "deny"]
    reasons: tuple[Reason, ...]
    approvable_only: bool
    """Every determining policy is ``@approvable``: a valid approval would lift the deny."""
    any_approvable: bool
    notes: tuple[str, ...]


#: cached entities / answers before the caches start over
_CACHE_LIMIT = 50_000


# What cedarpy answers per request (a JSON text); only three fields matter, and a regex over
# the text is several times cheaper than json.loads plus cedarpy's result objects.
_ANSWER = re.compile(r'"decision":"(Allow|Deny)".*?"reason":\[(.*?)\].*?"errors":\[(.*?)\]', re.DOTALL)


def _cedar_batch(
    requests: list[dict[str, Any]],
    policy_set: cedarpy.PolicySet,
    entities: cedarpy.Entities,
    schema: cedarpy.Schema | None,
) -> list[str]:
    """cedarpy's batch evaluation, returning its raw JSON answers.

    Calls the extension under ``cedarpy.is_authorized_batch`` (pinned cedarpy 4.12.2) so the hot
    path skips the wrapper's per-result ``json.loads`` and ``AuthzResult``; every context is
    already a JSON string, which is all the wrapper would prepare.
    """
    internal = getattr(cedarpy, "_internal", None)
    if internal is None or not hasattr(internal, "is_authorized_batch"):  # pragma: no cover
        return [
            json.dumps(r._authz_resp)
            for r in cedarpy.is_authorized_batch(requests, policy_set, entities, schema)
        ]
    out: list[str] = internal.is_authorized_batch(requests, policy_set, entities._inner, schema, False)
    return out


def _reason_order(r: Reason) -> tuple[int, int, str]:
    rank = SEVERITIES.index(r.severity) if r.severity in SEVERITIES else 0
    return (r.rail, -rank, r.policy_id)
