"""``--source k8s-audit``: Kubernetes audit events (``audit.k8s.io/v1``/``v1beta1`` ``Event``, JSON lines).

Mapping:

* ``event_id`` = ``k8s:<auditID>``; a stage other than ``ResponseComplete`` (a policy that logs
  several stages of one request) adds ``:<stage>`` so each stage is its own event.
* ``occurred_at`` = ``requestReceivedTimestamp`` (else ``stageTimestamp``, ``timestamp``).
* ``actor.id`` = ``user.username``; ``impersonatedUser.username``, when present, is the identity whose
  permissions were used: ``actor.credential`` (and ``attributes["impersonated_user"]``).
* ``action`` = ``k8s:<verb>:<resource>[/<subresource>]`` (``k8s:delete:deployments``,
  ``k8s:create:pods/exec``); ``resource.id`` = ``k8s://<cluster>/<namespace or _>/<resource>/<name or *>``.
* cluster: annotation ``railbook.io/cluster`` (or ``cluster-name``), a top-level ``cluster`` field
  added by a log shipper, or a path component of the input file name that matches a configured
  ``k8s_clusters`` pattern; environment through ``config.environment_for_cluster``.
* ``exec``/``attach``/``portforward`` into pods set ``attributes["pod_exec"]`` and the command from the
  request URI; reads of ``secrets`` set ``attributes["secret_read"]``; ``secrets`` resources carry the
  ``secret`` data class. Secret payloads (``data``/``stringData``) are removed from ``raw``.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import Field

from core.config import Config
from core.event import UNKNOWN, Actor, CanonicalEvent, Resource
from ingest._adapter import BaseAdapter
from ingest._common import Wire, actor_kind, attrs, check_id, clip, fail, parse_ts, validate

__all__ = ["K8sAuditAdapter"]

logger = logging.getLogger(__name__)

SOURCE = "k8s-audit"
_Name = Field(default=None, max_length=1024)
_CLUSTER_ANNOTATIONS = ("railbook.io/cluster", "cluster-name", "cluster", "k8s.io/cluster-name")


class _User(Wire):
    username: str | None = _Name
    groups: list[str] | None = None


class _ObjectRef(Wire):
    resource: str | None = Field(default=None, max_length=256)
    subresource: str | None = Field(default=None, max_length=256)
    namespace: str | None = _Name
    name: str | None = _Name
    apiGroup: str | None = _Name  # noqa: N815


class _Status(Wire):
    code: int | None = None
    reason: str | None = _Name


class _Event(Wire):
    kind: str | None = Field(default=None, max_length=64)
    apiVersion: str | None = Field(default=None, max_length=64)  # noqa: N815
    auditID: str = Field(min_length=1, max_length=256)  # noqa: N815
    stage: str | None = Field(default=None, max_length=64)
    verb: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z\-]+$")
    user: _User
    impersonatedUser: _User | None = None  # noqa: N815
    objectRef: _ObjectRef | None = None  # noqa: N815
    requestURI: str | None = Field(default=None, max_length=65536)  # noqa: N815
    sourceIPs: list[str] | None = None  # noqa: N815
    userAgent: str | None = Field(default=None, max_length=65536)  # noqa: N815
    responseStatus: _Status | None = None  # noqa: N815
    requestReceivedTimestamp: str | None = Field(default=None, max_length=64)  # noqa: N815
    stageTimestamp: str | None = Field(default=None, max_length=64)  # noqa: N815
    timestamp: str | None = Field(default=None, max_length=64)
    annotations: dict[str, str] | None = None
    cluster: str | None = Field(default=None, max_length=256)


_CLUSTER_SAFE = re.compile(r"^[A-Za-z0-9._:\-]+$")


class K8sAuditAdapter(BaseAdapter):
    name = SOURCE

    def normalise(self, record: Any, *, where: str, config: Config) -> list[CanonicalEvent]:
        ev = validate(_Event, record, source=SOURCE, where=where)
        if ev.kind not in (None, "Event"):
            raise fail(SOURCE, where, "kind", "'Event'", ev.kind, reason="shape")
        stamp = ev.requestReceivedTimestamp or ev.stageTimestamp or ev.timestamp
        if stamp is None:
            raise fail(SOURCE, where, "requestReceivedTimestamp", "a timestamp", None, reason="missing-field")
        occurred = parse_ts(stamp, source=SOURCE, where=where, field="requestReceivedTimestamp")
        ref = ev.objectRef or _ObjectRef()
        resource_name = ref.resource or "unknown"
        rtype = f"{resource_name}/{ref.subresource}" if ref.subresource else resource_name
        action = f"k8s:{ev.verb}:{rtype}"
        cluster = _cluster(ev, where, config)
        environment = config.environment_for_cluster(cluster) if cluster else UNKNOWN
        username = ev.user.username or UNKNOWN
        impersonated = ev.impersonatedUser.username if ev.impersonatedUser else None
        code = ev.responseStatus.code if ev.responseStatus else None
        attributes = attrs(
            stage=ev.stage,
            api_version=ev.apiVersion,
            source_ip=",".join(ev.sourceIPs[:4]) if ev.sourceIPs else None,
            user_agent=ev.userAgent,
            request_uri=ev.requestURI,
            response_code=code,
            impersonated_user=impersonated,
            authorization_decision=(ev.annotations or {}).get("authorization.k8s.io/decision"),
            user_groups=",".join(ev.user.groups[:16]) if ev.user.groups else None,
            cluster=cluster,
        )
        if code is not None and code >= 400:
            attributes["error_code"] = str(code)
            if ev.responseStatus and ev.responseStatus.reason:
                attributes["error_message"] = clip(ev.responseStatus.reason)
        if resource_name == "pods" and ref.subresource in ("exec", "attach", "portforward"):
            attributes["pod_exec"] = "true"
            command = _exec_command(ev.requestURI)
            if command:
                attributes["exec_command"] = clip(command)
        data_classes: tuple[str, ...] = ()
        if resource_name == "secrets":
            data_classes = ("secret",)
            if ev.verb in ("get", "list", "watch"):
                attributes["secret_read"] = "true"
        rid = f"k8s://{cluster or UNKNOWN}/{ref.namespace or '_'}/{resource_name}/{ref.name or '*'}"
        stage_suffix = "" if ev.stage in (None, "ResponseComplete") else f":{ev.stage}"
        actor_id = clip(username, 2048)
        return [
            CanonicalEvent(
                event_id=check_id(
                    f"k8s:{ev.auditID}{stage_suffix}", source=SOURCE, where=where, field="auditID"
                ),
                occurred_at=occurred,
                source=SOURCE,
                actor=Actor(
                    id=actor_id,
                    kind=actor_kind(config, actor_id, None, attributes),
                    credential=impersonated,
                ),
                action=action,
                resource=Resource(
                    id=clip(rid, 2048),
                    type=f"k8s:{resource_name}",
                    environment=environment,
                    account=cluster,
                    data_classes=data_classes,
                ),
                attributes=attributes,
            )
        ]

    def scrub(self, record: Any) -> Any:
        """Secret objects' ``data``/``stringData`` never reach ``raw`` (values are only base64)."""
        if not isinstance(record, dict):
            return record
        ref = record.get("objectRef")
        if not (isinstance(ref, dict) and ref.get("resource") == "secrets"):
            return record
        out = dict(record)
        for key in ("requestObject", "responseObject"):
            obj = out.get(key)
            if isinstance(obj, dict):
                out[key] = {
                    k: ("[REDACTED:secret]" if k in ("data", "stringData") and v else v)
                    for k, v in obj.items()
                }
        return out


def _cluster(ev: _Event, where: str, config: Config) -> str | None:
    for key in _CLUSTER_ANNOTATIONS:
        value = (ev.annotations or {}).get(key)
        if value:
            return value
    if ev.cluster:
        return ev.cluster
    # The input's name may say which cluster it came from (audit/prod-eks-1/…): only configured names count.
    origin = re.sub(r"(?::\d+)?(?:#\d+)*$", "", where)
    for part in re.split(r"[/\\]", origin):
        stem = part.split(".")[0]
        for candidate in (part, stem):
            if (
                candidate
                and _CLUSTER_SAFE.match(candidate)
                and config.environment_for_cluster(candidate) != UNKNOWN
            ):
                return candidate
    return None


def _exec_command(uri: str | None) -> str | None:
    if not uri:
        return None
    try:
        q = parse_qs(urlsplit(uri).query)
    except ValueError:
        return None
    cmd = q.get("command")
    return " ".join(cmd) if cmd else None
