"""The policy engine: canonical events in, explained decisions out (DESIGN.md, "Policy").

Hot path. One ``evaluate`` call turns a batch of events into Cedar requests and asks cedarpy
once, with pre-parsed handles (``PolicySet``, ``Schema``, ``Entities``): parsing is what makes
naive cedarpy use ~100x slower. Principals and resources become entities of one per-batch
delta over the schema's action entities; identical decision inputs within a batch (same
principal, action, resource and context) are evaluated once.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cedarpy

from core.errors import PolicyError
from policy._approvals import ApprovalBook, Found
from policy._catalog import Catalog, Resolved
from policy._decision import SEVERITIES, ApprovalCheck, Decision, Reason
from policy._pack import DEFAULT_PACK_DIR, Pack, PolicyInfo, load_pack

if TYPE_CHECKING:
    from core.config import Config
    from core.event import Actor, CanonicalEvent, Resource

__all__ = ["PolicyEngine"]

logger = logging.getLogger(__name__)

Mode = Literal["detect", "gate"]

_PRINCIPAL_TYPE = {"agent": "Agent", "human": "Human", "pipeline": "Pipeline", "service": "Service"}
# An IAM user access key id: standing until someone deactivates it (session keys start ASIA).
_LONG_LIVED = re.compile(r"AKIA[0-9A-Z]{12,}\Z")
#: events per Cedar call; bounds the per-batch entity delta
CHUNK = 4096
_NOT_NEEDED = ApprovalCheck("not-needed")


class PolicyEngine:
    """A loaded policy pack, ready to decide. Build it with ``PolicyEngine.load``."""

    def __init__(self, config: Config, pack: Pack, *, strict: bool = False) -> None:
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
        self._principals: dict[Actor, tuple[str, str, dict[str, Any]]] = {}
        self._resources: dict[tuple[Resource, bool], tuple[str, dict[str, Any]]] = {}

    @classmethod
    def load(cls, config: Config, *, pack_dir: Path | None = None, strict: bool = False) -> PolicyEngine:
        """Load ``pack_dir``, else ``[policy] dir``, else the default pack shipped in the package.

        Raises ``PolicyLoadError`` (naming file, line and problem) for a pack that does not parse
        or validate.
        """
        directory = (
            Path(pack_dir) if pack_dir else Path(config.policy.dir) if config.policy.dir else DEFAULT_PACK_DIR
        )
        return cls(config, load_pack(directory), strict=strict)

    @property
    def policies(self) -> dict[str, PolicyInfo]:
        """Every policy of the pack by id, with file, line and annotations."""
        return self.pack.policies

    # --- building requests --------------------------------------------------------------------------

    def _principal(self, actor: Actor) -> tuple[str, str, dict[str, Any]]:
        hit = self._principals.get(actor)
        if hit is not None:
            return hit
        cfg = self.config
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
        out = (_PRINCIPAL_TYPE.get(actor.kind, "UnknownPrincipal"), json.dumps(attrs, sort_keys=True), attrs)
        if len(self._principals) > 50_000:
            self._principals.clear()
        self._principals[actor] = out
        return out

    def _resource(self, res: Resource, protected: bool) -> tuple[str, dict[str, Any]]:
        key = (res, protected)
        hit = self._resources.get(key)
        if hit is not None:
            return hit
        attrs: dict[str, Any] = {
            "type": res.type,
            "environment": res.environment,
            "data_classes": list(res.data_classes),
            "protected": protected,
            "identity_kind": self.config.actor_kind(res.id),
        }
        if res.account:
            attrs["account"] = res.account
        out = (json.dumps(attrs, sort_keys=True), attrs)
        if len(self._resources) > 50_000:
            self._resources.clear()
        self._resources[key] = out
        return out

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
    ) -> list[Decision]:
        """Decide every event, in order; records grants, uses and gate requests in ``approvals``."""
        if mode not in ("detect", "gate"):
            raise PolicyError(f"evaluate: mode must be 'detect' or 'gate', got {mode!r}")
        out: list[Decision] = []
        for start in range(0, len(events), CHUNK):
            chunk = events[start : start + CHUNK]
            while chunk:
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
        """Decide a prefix of ``events`` with one Cedar call; returns (events decided, decisions).

        Gate mode: a grant is spent only by a gate ``allow``, which is known after Cedar answers,
        so the prefix ends at the first request that holds a valid grant: later requests in the
        batch then see whether it was spent, exactly as one-by-one evaluation would.
        """
        catalog = self.catalog
        entities: list[dict[str, Any]] = []
        uids: dict[tuple[str, str, str], str] = {}
        taken: set[tuple[str, str]] = set()
        requests: list[dict[str, Any]] = []
        index: dict[tuple[Any, ...], int] = {}
        fact_ids: dict[tuple[Any, ...], str] = {}
        plan: list[tuple[int, Found | None, Resolved]] = []

        def uid(etype: str, eid: str, key: str, attrs: dict[str, Any]) -> str:
            k = (etype, eid, key)
            got = uids.get(k)
            if got is None:
                # one entity per distinct attribute set: the same actor id seen with two
                # credentials in one batch becomes two entities, not a clash
                got = eid
                n = 1
                while (etype, got) in taken:
                    n += 1
                    got = f"{eid}#{n}"
                taken.add((etype, got))
                uids[k] = got
                entities.append({"uid": {"type": etype, "id": got}, "attrs": attrs, "parents": []})
            return got

        for ev in events:
            if ev.approval is not None:
                approvals.record_approval(ev)
            attributes = ev.attributes
            res = ev.resource
            resolved = catalog.resolve(ev.action, attributes, res.environment)
            found: Found | None = None
            if resolved.destructive:
                found = approvals.find(ev, mode)
                if found.grant is not None and mode == "detect":
                    # it already ran, and the approval was for this run: spent even when another
                    # rail flags the event (one approval, one run)
                    approvals.use(found.grant, ev.event_id, mode)
            link, bypass = None, False
            watched = mode == "detect" and resolved.destructive and res.environment != "dev"
            if watched and approvals.gates.watches(ev):
                link = approvals.gates.find(ev)  # policy._bypass: the gate request this execution follows
                bypass = link is None
                if link is not None and link.grant_request and (found is None or found.grant is None):
                    linked = approvals.linked_grant(link.grant_request)
                    if linked is not None:
                        found = Found(linked, 1, ())
                        approvals.use(linked, ev.event_id, mode)
            ptype, pkey, pattrs = self._principal(ev.actor)
            puid = uid(ptype, ev.actor.id, pkey, pattrs)
            rkey, rattrs = self._resource(res, self._protected(attributes))
            ruid = uid("Resource", res.id, rkey, rattrs)
            c = ev.change
            attribution = (
                bool(ev.actor.on_behalf_of),
                bool(c.task),
                bool(c.prompt_sha256),
                bool(c.diff_sha256),
                bool(c.commit),
                bool(c.pull_request),
                bool(c.ticket),
            )
            if link is not None:  # an audit record cannot carry what the gate request did
                attribution = tuple(x or y for x, y in zip(attribution, link.attribution, strict=True))  # type: ignore[assignment]
            status = found.status if found is not None else "none"
            failures = found.failures if found is not None else ()
            failed = bool(attributes.get("error_code")) if attributes else False
            tool = attributes.get("tool", "") if attributes else ""
            facts = (
                ev.action,
                resolved.unknown,
                ev.source,
                status,
                failures,
                attribution,
                res.data_classes,
                failed,
                tool,
                bypass,
            )
            fid = fact_ids.get(facts)
            if fid is None:
                fid = f"e{len(fact_ids)}"
                fact_ids[facts] = fid
                entities.append(
                    {
                        "uid": {"type": "Event", "id": fid},
                        "attrs": {
                            "action_name": ev.action,
                            "unknown_action": resolved.unknown,
                            "source": ev.source,
                            "mode": mode,
                            "via_pipeline": ptype == "Pipeline",
                            "approval": {
                                "status": status,
                                "valid": status == "valid",
                                "failures": list(failures),
                            },
                            "attribution": dict(zip(_ATTRIBUTION, attribution, strict=True)),
                            "data_classes": list(res.data_classes),
                            "failed": failed,
                            "tool": tool,
                            "gate_bypass": bypass,
                        },
                        "parents": [],
                    }
                )
            key = (ptype, puid, resolved.cedar_action, ruid, fid)
            i = index.get(key)
            if i is None:
                i = len(requests)
                index[key] = i
                requests.append(
                    {
                        "principal": {"type": ptype, "id": puid},
                        "action": {"type": "Action", "id": resolved.cedar_action},
                        "resource": {"type": "Resource", "id": ruid},
                        # a string: cedarpy passes it through instead of re-encoding a dict
                        "context": '{"event":{"__entity":{"type":"Event","id":"' + fid + '"}}}',
                    }
                )
            plan.append((i, found, resolved))
            if mode == "gate" and found is not None and found.grant is not None:
                break

        answers = self._ask_cedar(requests, entities)
        out: list[Decision] = []
        cache: dict[tuple[int, ApprovalCheck | None, bool], Decision] = {}
        for ev, (i, found, resolved) in zip(events[: len(plan)], plan, strict=True):
            outcome, reasons, approvable_only, notes = answers[i]
            check: ApprovalCheck | None = None
            if resolved.destructive and found is not None:
                if found.grant is not None or any(r.policy_id in self._approvable for r in reasons):
                    check = found.to_check()
                else:
                    check = _NOT_NEEDED
            ck = (i, check, resolved.unknown)
            d = cache.get(ck)
            if d is None:
                d = self._decision(outcome, reasons, approvable_only, notes, check, resolved, mode)
                cache[ck] = d
            if mode == "gate":
                if d.gate == "allow" and found is not None and found.grant is not None:
                    approvals.use(found.grant, ev.event_id, mode)  # a refused request leaves it unspent
                elif d.gate == "ask":
                    approvals.record_request(ev)
                approvals.gates.record(ev, d)
            out.append(d)
        return len(plan), out

    def _ask_cedar(
        self, requests: list[dict[str, Any]], entities: list[dict[str, Any]]
    ) -> list[tuple[Literal["allow", "deny"], tuple[Reason, ...], bool, tuple[str, ...]]]:
        schema = self.pack.schema if self._strict else None
        try:
            ents = self.pack.base_entities.with_added_json_str(json.dumps(entities), schema)
            raw = _cedar_batch(requests, self.pack.policy_set, ents, schema)
        except (ValueError, TypeError) as exc:
            raise PolicyError(
                f"cedar evaluation failed for a batch of {len(requests)} requests: {exc}; "
                "this is a bug in the request builder or a schema the engine does not fit"
            ) from exc
        answers = []
        memo: dict[
            tuple[str, str, str], tuple[Literal["allow", "deny"], tuple[Reason, ...], bool, tuple[str, ...]]
        ] = {}
        for text in raw:
            m = _ANSWER.search(text)
            if m is None:  # pragma: no cover - cedarpy changed its answer format
                raise PolicyError(f"cedarpy answered in an unexpected format: {text[:200]!r}")
            k = (m.group(1), m.group(2), m.group(3))
            got = memo.get(k)
            if got is None:
                got = self._answer(*k)
                memo[k] = got
            answers.append(got)
        return answers

    def _answer(
        self, decision: str, reason_list: str, errors: str
    ) -> tuple[Literal["allow", "deny"], tuple[Reason, ...], bool, tuple[str, ...]]:
        ids: list[str] = json.loads("[" + reason_list + "]")
        reasons = tuple(sorted((self._reasons[p] for p in ids if p in self._reasons), key=_reason_order))
        notes: tuple[str, ...] = ()
        if errors.strip():
            logger.warning("policy evaluation errors: %s", errors)
            notes = ("policy-error",)
        outcome: Literal["allow", "deny"] = "allow" if decision == "Allow" else "deny"
        if outcome == "deny" and not reasons:
            notes = (*notes, "no-permit")
        approvable_only = bool(reasons) and all(r.policy_id in self._approvable for r in reasons)
        return outcome, reasons, approvable_only, notes

    def _decision(
        self,
        outcome: Literal["allow", "deny"],
        reasons: tuple[Reason, ...],
        approvable_only: bool,
        notes: tuple[str, ...],
        check: ApprovalCheck | None,
        resolved: Resolved,
        mode: Mode,
    ) -> Decision:
        gate: Literal["allow", "deny", "ask"] | None = None
        if mode == "gate":
            if outcome == "allow":
                gate = "allow"
            elif approvable_only and not (check is not None and "denied" in check.failures):
                gate = "ask"  # a valid approval would allow it
            else:
                gate = "deny"
        if resolved.unknown:
            notes = (*notes, "unknown-action")
        return Decision(
            outcome=outcome,
            reasons=reasons,
            policy_version=self.version,
            approval=check,
            mode=mode,
            gate=gate,
            notes=tuple(sorted(set(notes))),
        )


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


_ATTRIBUTION = ("on_behalf_of", "task", "prompt", "diff", "commit", "pull_request", "ticket")


def _reason_order(r: Reason) -> tuple[int, int, str]:
    rank = SEVERITIES.index(r.severity) if r.severity in SEVERITIES else 0
    return (r.rail, -rank, r.policy_id)
