"""Synthetic ledgers for the dashboard's benchmark and browser tests (decisions built directly, so
seeding does not depend on the policy pack; the dashboard only reads what the ledger holds)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.event import Actor, Approval, CanonicalEvent, Change, Resource, sha256_hex
from policy import ApprovalCheck, Decision, Reason

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["seed_ledger", "story", "synthetic"]

logger = logging.getLogger(__name__)

PV = sha256_hex(b"railbook synthetic policy pack")

_R = {
    "r1": Reason(
        "rail1-agent-in-prod",
        1,
        "critical",
        "An agent identity acted on a production resource",
        "Run agents against staging; promote changes through the deploy pipeline.",
    ),
    "r2": Reason(
        "rail2-direct-prod-change", 2, "high", "A production change not made by the deploy pipeline"
    ),
    "r3": Reason(
        "rail3-destructive-unapproved", 3, "high", "A destructive action ran without a valid approval"
    ),
    "r4": Reason("rail4-missing-human", 4, "medium", "An agent change names no instructing human"),
    "r4d": Reason("rail4-missing-diff", 4, "low", "An agent change carries no diff hash"),
}


def _deny(
    *keys: str, approval: ApprovalCheck | None = None, mode: str = "detect", gate: str | None = None
) -> Decision:
    return Decision("deny", tuple(_R[k] for k in keys), PV, approval, mode=mode, gate=gate)  # type: ignore[arg-type]


def story(now: datetime | None = None) -> list[tuple[CanonicalEvent, Decision]]:
    """The incident from DESIGN.md, plus a pending approval and an approved change."""
    t0 = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(days=3)
    agent = Actor(
        "agent:claude-migrations",
        "agent",
        on_behalf_of="bob@example.com",
        session="sess-81",
        credential="arn:aws:sts::111111111111:assumed-role/agent-migrations/sess-81",
    )
    prod_db = Resource("db://prod-db.internal/ledger", "database", "prod", "prod-db.internal", ("pii",))
    stg_db = Resource("db://staging-db.internal/ledger", "database", "staging", "staging-db.internal")
    task = "JIRA-412 fix the flaky balances migration"
    out: list[tuple[CanonicalEvent, Decision]] = []
    for i in range(24):
        out.append(
            (
                CanonicalEvent(
                    f"agent:sess-81:{i}",
                    t0 + timedelta(minutes=7 * i),
                    "agent",
                    agent,
                    "shell:Exec" if i % 3 else "sql:Select",
                    stg_db,
                    Change(task=task, prompt_sha256=sha256_hex(b"p%d" % i)),
                ),
                Decision("allow", (), PV),
            )
        )
    out.append(
        (
            CanonicalEvent(
                "agent:sess-81:alter",
                t0 + timedelta(hours=4),
                "agent",
                agent,
                "sql:AlterTable",
                prod_db,
                Change(
                    task=task,
                    prompt_sha256=sha256_hex(b"alter"),
                    diff_sha256=sha256_hex(b"ALTER TABLE balances"),
                    commit="9f3c2ab47e1d",
                    pull_request="https://github.com/acme/core-banking/pull/412",
                ),
                attributes={"tool": "psql"},
                raw='{"tool":"psql","command":"ALTER TABLE balances DROP COLUMN legacy_hold"}',
            ),
            _deny("r1", "r2", "r3", approval=ApprovalCheck("missing")),
        )
    )
    out.append(
        (
            CanonicalEvent(
                "github:delivery-77",
                t0 + timedelta(hours=4, minutes=20),
                "github",
                Actor("claude[bot]", "agent"),
                "git:Push",
                Resource("acme/core-banking@main", "git-branch", "prod", "acme/core-banking"),
                Change(commit="9f3c2ab47e1d"),
            ),
            _deny("r2", "r4", "r4d"),
        )
    )
    out.append(
        (
            CanonicalEvent(
                "gate:req-drop-tmp",
                t0 + timedelta(days=2),
                "gate",
                agent,
                "sql:DropTable",
                stg_db,
                Change(
                    task="JIRA-415 drop the temp balances table",
                    diff_sha256=sha256_hex(b"DROP TABLE tmp_balances"),
                ),
                attributes={"request_id": "req-drop-tmp", "command": "DROP TABLE tmp_balances"},
            ),
            _deny("r3", approval=ApprovalCheck("missing"), mode="gate", gate="ask"),
        )
    )
    out.append(
        (
            CanonicalEvent(
                "approval:req-idx:1",
                t0 + timedelta(days=1),
                "approval",
                Actor("carol@example.com", "human"),
                "approval:Grant",
                stg_db,
                approval=Approval(
                    "req-idx",
                    "grant",
                    agent.id,
                    "sql:CreateIndex",
                    stg_db.id,
                    expires_at=t0 + timedelta(days=1, minutes=15),
                ),
                attributes={"comment": "index plan reviewed"},
            ),
            Decision("allow", (), PV),
        )
    )
    out.append(
        (
            CanonicalEvent(
                "agent:sess-90:index",
                t0 + timedelta(days=1, minutes=5),
                "agent",
                agent,
                "sql:CreateIndex",
                stg_db,
                Change(
                    task="JIRA-413 speed up balance lookups",
                    diff_sha256=sha256_hex(b"CREATE INDEX"),
                    commit="4b1d9e0c77aa",
                    pull_request="https://github.com/acme/core-banking/pull/413",
                ),
            ),
            Decision("allow", (), PV, ApprovalCheck("covered", "req-idx", "carol@example.com")),
        )
    )
    return out


_ACTORS = [
    (Actor("agent:claude-migrations", "agent", "bob@example.com"), 0.35),
    (Actor("agent:copilot-infra", "agent", "dana@example.com"), 0.25),
    (Actor("agent:cursor-web", "agent", None), 0.1),
    (Actor("pipeline:deploy", "pipeline"), 0.2),
    (Actor("erin@example.com", "human"), 0.1),
]
_ACTIONS = [
    "shell:Exec",
    "sql:Select",
    "git:Push",
    "s3:PutObject",
    "sql:AlterTable",
    "k8s:patch:deployments",
    "iam:AttachRolePolicy",
    "s3:DeleteObject",
]
_ENVS = ["dev", "staging", "prod"]


def synthetic(
    n: int, *, seed: int = 7, days: int = 30, now: datetime | None = None, start: int = 0
) -> Iterator[tuple[CanonicalEvent, Decision]]:
    """``n`` plausible entries spread over ``days``, about one in ten a violation."""
    rnd = random.Random(seed + start)
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    span = days * 86400
    actors = [a for a, _ in _ACTORS]
    weights = [w for _, w in _ACTORS]
    for i in range(start, start + n):
        actor = rnd.choices(actors, weights)[0]
        env = rnd.choice(_ENVS)
        action = rnd.choice(_ACTIONS)
        t = end - timedelta(seconds=span * (1 - (i - start + 1) / (n + 1)))
        ev = CanonicalEvent(
            f"syn:{i}",
            t,
            rnd.choice(["agent", "ci", "cloudtrail", "k8s-audit", "github"]),
            actor,
            action,
            Resource(f"{env}-res-{i % 500}", "database", env),
            Change(task=f"TASK-{i % 900}", commit=f"{i:012x}", diff_sha256=None),
        )
        if actor.kind == "agent" and env == "prod" and rnd.random() < 0.6:
            dec = _deny("r1", "r4d")
        elif actor.kind == "human" and env == "prod" and rnd.random() < 0.5:
            dec = _deny("r2")
        else:
            dec = Decision("allow", (), PV)
        yield ev, dec


def seed_ledger(
    config: Config,
    records: Iterator[tuple[CanonicalEvent, Decision]] | list[tuple[CanonicalEvent, Decision]],
    *,
    batch: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append ``records`` to the ledger of ``config`` and sign a checkpoint (publishing segments)."""
    from ledger import Ledger

    n = 0
    with Ledger.open(config) as ledger:
        buf: list[tuple[CanonicalEvent, Decision]] = []
        for rec in records:
            buf.append(rec)
            if len(buf) >= batch:
                n += len(ledger.append(buf).appended)
                buf = []
                if progress:
                    progress(n)
        if buf:
            n += len(ledger.append(buf).appended)
        ledger.checkpoint(force=True)
    if progress:
        progress(n)
    return n
