"""``--source event``: the canonical event JSON itself (any runtime that speaks Railbook's envelope).

Parsed strictly by ``core.event_from_dict``. Configuration still wins: ``actor.kind`` is what
``config.actor_kind`` derives from ``actor.id``, and ``resource.environment`` what the configuration
derives from the resource (``db://host/…`` → host, ``k8s://cluster/…`` → cluster, an ARN or
``account`` → AWS account or cluster). A differing claim is kept in ``attributes["claimed.actor.kind"]``
/ ``attributes["claimed.resource.environment"]``. Free text (``attributes`` values, ``change.task``,
``raw``) is redacted; identifiers are not touched.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from core.config import Config
from core.event import UNKNOWN, CanonicalEvent, event_from_dict
from ingest._adapter import KEEP_OWN_RAW, BaseAdapter
from ingest._common import actor_kind, environment
from ingest.redact import redact_text

__all__ = ["EventAdapter", "environment_for_resource"]

logger = logging.getLogger(__name__)

_ARN_ACCOUNT = re.compile(r"^arn:aws[\w-]*:[\w-]*:[\w-]*:(\d{12}):")


def environment_for_resource(config: Config, resource_id: str, account: str | None) -> str:
    """What configuration says about a canonical resource id / account; ``unknown`` when it says nothing."""
    if resource_id.startswith("db://"):
        host = resource_id[5:].split("/")[0].split(":")[0]
        return config.environment_for_host(host)
    if resource_id.startswith("k8s://"):
        return config.environment_for_cluster(resource_id[6:].split("/")[0])
    m = _ARN_ACCOUNT.match(resource_id)
    if m:
        env = config.environment_for_account(m.group(1))
        if env != UNKNOWN:
            return env
    if account:
        for env in (config.environment_for_account(account), config.environment_for_cluster(account)):
            if env != UNKNOWN:
                return env
    return UNKNOWN


class EventAdapter(BaseAdapter):
    name = "event"

    def normalise(self, record: Any, *, where: str, config: Config) -> list[CanonicalEvent]:
        if isinstance(record, dict):
            record = _redact_free_text(record)
        ev = event_from_dict(record, where=f"event: {where}")
        attributes = dict(ev.attributes)
        kind = actor_kind(
            config, ev.actor.id, ev.actor.kind if ev.actor.kind != UNKNOWN else None, attributes
        )
        derived = environment_for_resource(config, ev.resource.id, ev.resource.account)
        claimed_env = ev.resource.environment if ev.resource.environment != UNKNOWN else None
        env = environment(derived, claimed_env, attributes)
        return [
            dataclasses.replace(
                ev,
                actor=dataclasses.replace(ev.actor, kind=kind),
                resource=dataclasses.replace(ev.resource, environment=env),
                attributes=attributes,
            )
        ]

    def scrub(self, record: Any) -> Any:
        return KEEP_OWN_RAW


def _redact_free_text(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    if isinstance(out.get("attributes"), dict):
        out["attributes"] = {
            k: redact_text(v)[0] if isinstance(v, str) else v for k, v in out["attributes"].items()
        }
    if isinstance(out.get("change"), dict) and isinstance(out["change"].get("task"), str):
        out["change"] = {**out["change"], "task": redact_text(out["change"]["task"])[0]}
    if isinstance(out.get("raw"), str):
        out["raw"] = redact_text(out["raw"])[0]
    return out
