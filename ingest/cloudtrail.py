"""``--source cloudtrail``: AWS CloudTrail records.

Accepted shapes: a log file ``{"Records": [...]}`` (gzipped or not; expanded by ``normalise_bytes``),
a single record, and the EventBridge envelope (``{"detail-type": "AWS API Call via CloudTrail",
"detail": {...}}``). Mapping:

* ``event_id`` = ``cloudtrail:<eventID>``; ``occurred_at`` = ``eventTime``.
* ``actor.id`` from ``userIdentity``: the ARN (IAM user, assumed-role session, federated user, root),
  ``invokedBy`` for ``AWSService``, ``arn:aws:iam::<accountId>:root`` for ``AWSAccount``, else
  ``userName`` / ``principalId``. ``actor.session`` = role session name; ``actor.credential`` =
  ``accessKeyId`` (else the session ARN); ``actor.on_behalf_of`` = ``sourceIdentity`` when set.
* ``action`` = ``eventSource`` prefix + ``:`` + ``eventName`` (``iam:AttachRolePolicy``); API
  version suffixes are dropped (``lambda:AddPermission20150331v2`` → ``lambda:AddPermission``).
* ``resource`` from the request parameter that names the target (``bucketName``, ``roleName``,
  ``userName``, ``tableName``, ``functionName``, ``name`` …), as an ARN where one can be built;
  ``environment`` from ``recipientAccountId`` through ``config.environment_for_account``.
* Failed calls keep ``attributes["error_code"]`` (and ``error_message``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import Field

from core.config import Config
from core.errors import NormaliseError
from core.event import UNKNOWN, Actor, CanonicalEvent, Resource
from ingest._adapter import BaseAdapter
from ingest._common import Wire, actor_kind, attrs, check_id, clip, parse_ts, validate

__all__ = ["CloudTrailAdapter"]

logger = logging.getLogger(__name__)

SOURCE = "cloudtrail"

_Str = Field(default=None, max_length=2048)


class _SessionIssuer(Wire):
    type: str | None = _Str
    arn: str | None = _Str
    userName: str | None = _Str  # noqa: N815 - wire name


class _SessionContext(Wire):
    sessionIssuer: _SessionIssuer | None = None  # noqa: N815
    sourceIdentity: str | None = _Str  # noqa: N815
    attributes: dict[str, Any] | None = None


class _UserIdentity(Wire):
    type: str | None = Field(default=None, max_length=128)
    arn: str | None = _Str
    principalId: str | None = _Str  # noqa: N815
    accountId: str | None = Field(default=None, max_length=64)  # noqa: N815
    accessKeyId: str | None = Field(default=None, max_length=256)  # noqa: N815
    userName: str | None = _Str  # noqa: N815
    invokedBy: str | None = _Str  # noqa: N815
    sessionContext: _SessionContext | None = None  # noqa: N815
    sourceIdentity: str | None = _Str  # noqa: N815


class _Record(Wire):
    eventID: str = Field(min_length=1, max_length=256)  # noqa: N815
    eventTime: str = Field(max_length=64)  # noqa: N815
    eventSource: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9.\-]+$")  # noqa: N815
    eventName: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_\-]+$")  # noqa: N815
    userIdentity: _UserIdentity | None = None  # noqa: N815
    recipientAccountId: str | None = Field(default=None, max_length=64)  # noqa: N815
    awsRegion: str | None = Field(default=None, max_length=64)  # noqa: N815
    sourceIPAddress: str | None = _Str  # noqa: N815
    userAgent: str | None = Field(default=None, max_length=65536)  # noqa: N815
    errorCode: str | None = _Str  # noqa: N815
    errorMessage: str | None = Field(default=None, max_length=65536)  # noqa: N815
    requestParameters: dict[str, Any] | None = None  # noqa: N815
    responseElements: dict[str, Any] | None = None  # noqa: N815
    eventType: str | None = _Str  # noqa: N815
    eventCategory: str | None = _Str  # noqa: N815
    readOnly: bool | None = None  # noqa: N815
    requestID: str | None = _Str  # noqa: N815
    sharedEventID: str | None = _Str  # noqa: N815
    managementEvent: bool | None = None  # noqa: N815


_VERSION_SUFFIX = re.compile(r"(?<=[a-z])\d{8}(?:v\d+)?$")

# request parameter → (resource type, ARN template); {a} account, {v} value, {p} partition-free
_TARGETS: tuple[tuple[str, str, str | None], ...] = (
    ("bucketName", "s3-bucket", "arn:aws:s3:::{v}"),
    ("roleName", "iam-role", "arn:aws:iam::{a}:role/{v}"),
    ("userName", "iam-user", "arn:aws:iam::{a}:user/{v}"),
    ("groupName", "iam-group", "arn:aws:iam::{a}:group/{v}"),
    ("policyArn", "iam-policy", None),
    ("roleArn", "iam-role", None),
    ("tableName", "dynamodb-table", "arn:aws:dynamodb:{r}:{a}:table/{v}"),
    ("functionName", "lambda-function", "arn:aws:lambda:{r}:{a}:function:{v}"),
    ("trailName", "cloudtrail-trail", "arn:aws:cloudtrail:{r}:{a}:trail/{v}"),
    ("secretId", "secretsmanager-secret", None),
    ("dBSnapshotIdentifier", "rds-snapshot", "arn:aws:rds:{r}:{a}:snapshot:{v}"),
    ("dBInstanceIdentifier", "rds-instance", "arn:aws:rds:{r}:{a}:db:{v}"),
    ("dBClusterIdentifier", "rds-cluster", "arn:aws:rds:{r}:{a}:cluster:{v}"),
    ("snapshotId", "ebs-snapshot", "arn:aws:ec2:{r}:{a}:snapshot/{v}"),
    ("imageId", "ec2-image", "arn:aws:ec2:{r}::image/{v}"),
    ("instanceId", "ec2-instance", "arn:aws:ec2:{r}:{a}:instance/{v}"),
    ("groupId", "ec2-security-group", "arn:aws:ec2:{r}:{a}:security-group/{v}"),
    ("keyId", "kms-key", None),
    ("clusterName", "eks-cluster", "arn:aws:eks:{r}:{a}:cluster/{v}"),
    ("stackName", "cloudformation-stack", None),
    ("resolverQueryLogConfigId", "route53resolver-query-log-config", None),
    ("modelId", "bedrock-model", None),
    ("name", "{service}", None),
    ("names", "{service}", None),
)
_SERVICE_NAME_TYPES = {"cloudtrail": "cloudtrail-trail", "ssm": "ssm-parameter", "sts": "sts-federated-user"}


class CloudTrailAdapter(BaseAdapter):
    name = SOURCE

    def normalise(self, record: Any, *, where: str, config: Config) -> list[CanonicalEvent]:
        envelope_attrs: dict[str, str] = {}
        if isinstance(record, dict) and isinstance(record.get("detail"), dict) and "detail-type" in record:
            # EventBridge delivers one CloudTrail record under "detail"
            envelope_attrs = attrs(
                eventbridge__id=record.get("id"), eventbridge__detail_type=record.get("detail-type")
            )
            record = record["detail"]
        if isinstance(record, dict) and isinstance(record.get("Records"), list):
            raise NormaliseError(
                f"{SOURCE}: {where}: a whole log file reached the record adapter; use normalise_bytes",
                reason="shape",
            )
        r = validate(_Record, record, source=SOURCE, where=where)
        occurred = parse_ts(r.eventTime, source=SOURCE, where=where, field="eventTime")
        service = r.eventSource.split(".")[0]
        verb = _VERSION_SUFFIX.sub("", r.eventName)
        action = f"{service}:{verb}"
        account = r.recipientAccountId or (r.userIdentity.accountId if r.userIdentity else None)
        attributes = attrs(
            region=r.awsRegion,
            source_ip=r.sourceIPAddress,
            user_agent=r.userAgent,
            error_code=r.errorCode,
            error_message=r.errorMessage,
            event_type=r.eventType,
            event_category=r.eventCategory,
            read_only=r.readOnly,
            aws__request_id=r.requestID,  # not `request_id`: that names an approval request
            shared_event_id=r.sharedEventID,
            event_name=r.eventName if verb != r.eventName else None,
        )
        attributes.update(envelope_attrs)
        if r.errorCode:
            attributes["failed"] = "true"
        actor = _actor(r.userIdentity, config, attributes)
        resource = _resource(r, service, account, config)
        return [
            CanonicalEvent(
                event_id=check_id(f"{SOURCE}:{r.eventID}", source=SOURCE, where=where, field="eventID"),
                occurred_at=occurred,
                source=SOURCE,
                actor=actor,
                action=action,
                resource=resource,
                attributes=attributes,
            )
        ]


def _actor(ui: _UserIdentity | None, config: Config, attributes: dict[str, str]) -> Actor:
    if ui is None:
        return Actor(id=UNKNOWN, kind="unknown")
    kind_type = ui.type or "Unknown"
    attributes["identity_type"] = clip(kind_type, 128)
    session = None
    credential = ui.accessKeyId or None
    if kind_type == "AWSService":
        actor_id = ui.invokedBy or ui.principalId or UNKNOWN
    elif kind_type == "AWSAccount" and not ui.arn:
        actor_id = f"arn:aws:iam::{ui.accountId}:root" if ui.accountId else (ui.principalId or UNKNOWN)
    else:
        actor_id = ui.arn or ui.userName or ui.principalId or UNKNOWN
    if kind_type in ("AssumedRole", "FederatedUser") and ui.arn and "/" in ui.arn:
        session = ui.arn.rsplit("/", 1)[1]
        credential = credential or ui.arn
    ctx = ui.sessionContext
    if ctx and ctx.sessionIssuer and ctx.sessionIssuer.arn:
        attributes["session_issuer"] = clip(ctx.sessionIssuer.arn, 2048)
    if ctx and ctx.attributes and isinstance(ctx.attributes.get("mfaAuthenticated"), str):
        attributes["mfa_authenticated"] = ctx.attributes["mfaAuthenticated"][:8]
    if ui.invokedBy and kind_type != "AWSService":
        attributes["invoked_by"] = clip(ui.invokedBy, 256)
    on_behalf_of = (ctx.sourceIdentity if ctx else None) or ui.sourceIdentity
    actor_id = clip(actor_id, 2048)
    return Actor(
        id=actor_id,
        kind=actor_kind(config, actor_id, None, attributes),
        on_behalf_of=on_behalf_of,
        session=session,
        credential=credential,
    )


def _resource(r: _Record, service: str, account: str | None, config: Config) -> Resource:
    env = config.environment_for_account(account)
    params = r.requestParameters or {}
    region = r.awsRegion or ""
    for key, rtype, template in _TARGETS:
        value = params.get(key)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = value[0]
        if not isinstance(value, str) or not value or len(value) > 1024:
            continue
        if key == "policyArn" and any(
            isinstance(params.get(k), str) for k in ("roleName", "userName", "groupName")
        ):
            continue  # AttachRolePolicy targets the role; the policy is what is attached
        rtype = rtype.replace("{service}", _SERVICE_NAME_TYPES.get(service, f"aws:{service}"))
        if value.startswith("arn:"):
            rid = value
        elif template:
            rid = template.format(a=account or "", r=region, v=value)
        else:
            rid = f"aws://{account or UNKNOWN}/{service}/{value}"
        return Resource(id=rid, type=rtype, environment=env, account=account)
    return Resource(
        id=f"aws://{account or UNKNOWN}/{service}", type=f"aws:{service}", environment=env, account=account
    )
