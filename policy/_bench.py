"""The policy benchmark: decisions per second, single vs batched, default pack vs one ``permit``.

Both packs share the default schema and catalog, so the ratio isolates what the rails cost.
Event mixes:

- *distinct*: every event has its own resource id, so no two events' entities are equal. Since
  2026-12-07 the engine asks Cedar once per distinct *shape* (entities equal but for their ids,
  which a pack naming no entity cannot observe): 4000 such events need 67 Cedar requests, not
  4000, so this measures building entities for new ids and the answer cache, no longer Cedar
  per event (docs/design/policy.md, "Evaluation", gives Cedar's own per-request cost);
- *realistic*: the shape of a working day, where agents, pipelines and humans repeat
  themselves (the same actor reading the same bucket again), which dedup evaluates once.

Every measured pass starts from a cold engine (``PolicyEngine.clear_cache``) and a fresh
``ApprovalBook``: the engine keeps Cedar's answers across calls, so without that a repeated pass
over the same events would measure cache hits, not decisions. Within a pass, answers are shared
across its batches exactly as in a long-running ``railbook serve``.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.event import Actor, Approval, CanonicalEvent, Change, Resource
from policy._approvals import ApprovalBook
from policy._engine import PolicyEngine
from policy._pack import DEFAULT_PACK_DIR

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["make_mix", "run_benchmark", "trivial_pack"]

logger = logging.getLogger(__name__)

_T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_H = "ab" * 32


def _event(i: int, actor: Actor, action: str, res: Resource, **kw: Any) -> CanonicalEvent:
    return CanonicalEvent(
        event_id=f"bench:{i}",
        occurred_at=_T0 + timedelta(milliseconds=i),
        source=kw.pop("source", "agent"),
        actor=actor,
        action=action,
        resource=res,
        **kw,
    )


def make_mix(n: int, *, distinct: bool, seed: int = 7) -> list[CanonicalEvent]:
    """``n`` events of a realistic mix; ``distinct`` gives every event its own resource id."""
    rnd = random.Random(seed)
    agents = [
        Actor(f"agent:claude-{k}", "agent", on_behalf_of=f"dev{k}@example.com", session=f"s{k}")
        for k in range(8)
    ]
    humans = [Actor(f"dev{k}@example.com", "human") for k in range(8)]
    pipeline = Actor("arn:aws:sts::111111111111:assumed-role/deploy-pipeline/run-1", "pipeline")
    service = Actor("autoscaling.amazonaws.com", "service")
    change = Change(task="JIRA-1: fix flaky migration", prompt_sha256=_H, diff_sha256=_H)
    out: list[CanonicalEvent] = []
    for i in range(n):
        suffix = f"-{i}" if distinct else f"-{rnd.randrange(6)}"
        roll = rnd.random()
        if roll < 0.35:  # agent tool use in staging/dev
            env = rnd.choice(("staging", "dev"))
            out.append(
                _event(
                    i,
                    rnd.choice(agents),
                    rnd.choice(("file:Write", "shell:Exec", "file:Read")),
                    Resource(f"file:///repo/src/mod{suffix}.py", "file", env),
                    change=change,
                    attributes={"tool": rnd.choice(("Edit", "Bash", "Read"))},
                )
            )
        elif roll < 0.60:  # cloud reads by humans and services
            actor = rnd.choice(humans + [service])
            out.append(
                _event(
                    i,
                    actor,
                    rnd.choice(("ec2:DescribeInstances", "s3:GetObject", "iam:GetUser")),
                    Resource(
                        f"arn:aws:s3:::bucket{suffix}",
                        "s3-bucket",
                        rnd.choice(("prod", "staging")),
                        account="111111111111",
                    ),
                    source="cloudtrail",
                )
            )
        elif roll < 0.75:  # pipeline deploys
            out.append(
                _event(
                    i,
                    pipeline,
                    rnd.choice(("k8s:patch:deployments", "ci:Deploy")),
                    Resource(
                        f"k8s://prod-eks/payments/deployments/api{suffix}",
                        "k8s:deployments",
                        "prod",
                        account="prod-eks",
                    ),
                    source="k8s-audit",
                )
            )
        elif roll < 0.85:  # kubectl reads
            out.append(
                _event(
                    i,
                    rnd.choice(humans),
                    "k8s:get:pods",
                    Resource(f"k8s://staging-eks/payments/pods/api{suffix}", "k8s:pods", "staging"),
                    source="k8s-audit",
                )
            )
        elif roll < 0.93:  # destructive, some approved
            agent = rnd.choice(agents)
            res = Resource(f"db://staging-db.internal/payments{suffix}", "database", "staging")
            if rnd.random() < 0.5:
                out.append(
                    _event(
                        i,
                        Actor("alice@example.com", "human"),
                        "approval:Grant",
                        res,
                        source="approval",
                        approval=Approval(f"req-{i}", "grant", agent.id, "sql:AlterTable", res.id),
                    )
                )
            else:
                out.append(_event(i, agent, "sql:AlterTable", res, change=change))
        else:  # violations: agent in prod, humans changing prod
            if rnd.random() < 0.5:
                out.append(
                    _event(
                        i,
                        rnd.choice(agents),
                        "sql:AlterTable",
                        Resource(f"db://prod-db.internal/payments{suffix}", "database", "prod"),
                        change=change,
                    )
                )
            else:
                out.append(
                    _event(
                        i,
                        rnd.choice(humans),
                        "iam:AttachRolePolicy",
                        Resource(f"arn:aws:iam::111111111111:role/app{suffix}", "iam-role", "prod"),
                        source="cloudtrail",
                    )
                )
    return out


def trivial_pack(directory: Path) -> Path:
    """Write the reference pack into ``directory``: the default schema and catalog, one ``permit``."""
    directory.mkdir(parents=True, exist_ok=True)
    for p in DEFAULT_PACK_DIR.glob("*.cedarschema"):
        shutil.copy(p, directory / p.name)
    shutil.copy(DEFAULT_PACK_DIR / "catalog.json", directory / "catalog.json")
    (directory / "permit.cedar").write_text("permit (principal, action, resource);\n")
    return directory


def _rate(fn: Callable[[], int], min_seconds: float) -> float:
    done, t0 = 0, time.perf_counter()
    while True:
        done += fn()
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return done / dt


def run_benchmark(
    config: Config, *, events: int = 4000, batch: int = 1000, min_seconds: float = 1.0
) -> dict[str, Any]:
    """Measure decisions/s; returns a JSON-able dict (rates per pack and mix, and ratios)."""
    distinct = make_mix(events, distinct=True)
    realistic = make_mix(events, distinct=False)
    single_n = max(50, min(events, 500))
    with tempfile.TemporaryDirectory() as tmp:
        engines = {
            "default": PolicyEngine.load(config),
            "trivial": PolicyEngine.load(config, pack_dir=trivial_pack(Path(tmp) / "trivial")),
        }
    results: dict[str, Any] = {"events": events, "batch": batch}
    for name, engine in engines.items():

        def batched(evs: list[CanonicalEvent], engine: PolicyEngine = engine) -> int:
            engine.clear_cache()
            book = ApprovalBook(config)
            for s in range(0, len(evs), batch):
                engine.evaluate(evs[s : s + batch], approvals=book)
            return len(evs)

        def single(engine: PolicyEngine = engine) -> int:
            engine.clear_cache()
            book = ApprovalBook(config)
            for ev in distinct[:single_n]:
                engine.evaluate([ev], approvals=book)
            return single_n

        results[name] = {
            "single_per_s": round(_rate(single, min_seconds)),
            "batched_distinct_per_s": round(_rate(lambda: batched(distinct), min_seconds)),
            "batched_realistic_per_s": round(_rate(lambda: batched(realistic), min_seconds)),
        }
        logger.info("bench policy pack=%s %s", name, results[name])
    d, t = results["default"], results["trivial"]
    results["ratios"] = {
        "default_vs_trivial_distinct": round(d["batched_distinct_per_s"] / t["batched_distinct_per_s"], 3),
        "realistic_vs_distinct_default": round(d["batched_realistic_per_s"] / d["batched_distinct_per_s"], 3),
        "batched_vs_single_default": round(d["batched_distinct_per_s"] / d["single_per_s"], 3),
    }
    results["policy_version"] = engines["default"].version
    return results
