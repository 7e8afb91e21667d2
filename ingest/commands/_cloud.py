"""Cloud CLIs: ``aws <service> <verb>`` → CloudTrail's spelling (``iam:AttachRolePolicy``); account from
ARNs in the arguments → environment."""

from __future__ import annotations

import logging
import re

from core.config import Config
from core.event import UNKNOWN
from ingest._common import clip
from ingest.commands._facts import Guess

__all__ = ["classify_aws"]

logger = logging.getLogger(__name__)


_AWS_SERVICE = {
    "s3api": "s3",
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "configservice": "config",
    "stepfunctions": "states",
    "cognito-idp": "cognito-idp",
}
_AWS_S3 = {
    "rm": "DeleteObject",
    "rb": "DeleteBucket",
    "mb": "CreateBucket",
    "ls": "ListObjects",
    "presign": "GetObject",
}
_AWS_TARGET_FLAGS = (
    "--bucket",
    "--role-name",
    "--user-name",
    "--group-name",
    "--table-name",
    "--function-name",
    "--db-instance-identifier",
    "--db-cluster-identifier",
    "--cluster-name",
    "--cluster",
    "--secret-id",
    "--trail-name",
    "--name",
    "--stack-name",
    "--key-id",
    "--instance-ids",
    "--instance-id",
    "--group-id",
    "--snapshot-id",
    "--image-id",
    "--repository-name",
    "--queue-url",
    "--topic-arn",
    "--log-group-name",
    "--policy-arn",
    "--role-arn",
    "--resource-arn",
    "--arn",
)
_DESTRUCTIVE_VERB = re.compile(
    r"^(Delete|Terminate|Remove|Stop|Disable|Deregister|Revoke|Detach|Leave|Purge|Cancel)"
)
_WRITE_VERB = re.compile(
    r"^(Attach|Put|Update|Modify|Create|Set|Add|Authorize|Run|Start|Enable|Register|Reset|Rotate|Restore"
    r"|Tag|Untag|Replace|Associate|Import|Invoke|Send|Publish|Copy|Upload|Change)"
)
_ARN_ACCOUNT = re.compile(r"\barn:aws[\w-]*:[\w-]*:[\w-]*:(\d{12}):")


def classify_aws(args: list[str], config: Config) -> Guess:
    profile = region = None
    positional: list[str] = []
    named: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            key, eq, val = a.partition("=")
            if eq:
                named[key] = val
                i += 1
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                named[key] = args[i + 1]
                i += 2
            else:
                named[key] = ""
                i += 1
        else:
            positional.append(a)
            i += 1
    profile = named.get("--profile")
    region = named.get("--region")
    service = positional[0] if positional else "unknown"
    op_word = positional[1] if len(positional) > 1 else ""
    target: str | None = None
    rtype = f"aws:{_AWS_SERVICE.get(service, service)}"
    if service == "s3":
        uris = [p for p in positional[2:] if p.startswith("s3://")]
        if op_word in ("cp", "mv", "sync"):
            dest = positional[-1] if len(positional) > 3 else ""
            verb = "PutObject" if dest.startswith("s3://") else "GetObject"
            if op_word == "mv":
                verb = "DeleteObject" if not dest.startswith("s3://") else "PutObject"
        else:
            verb = _AWS_S3.get(op_word, "".join(w.capitalize() for w in op_word.split("-")) or "Unknown")
        if uris:
            bucket = uris[-1 if verb == "PutObject" else 0][5:].split("/")[0]
            target = f"arn:aws:s3:::{bucket}"
            rtype = "s3-bucket"
        svc = "s3"
    else:
        svc = _AWS_SERVICE.get(service, service)
        verb = "".join(w.capitalize() for w in op_word.split("-")) or "Unknown"
        for flag in _AWS_TARGET_FLAGS:
            if named.get(flag):
                target = named[flag].split()[0]
                break
    accounts = [m.group(1) for v in [*named.values(), *positional] for m in _ARN_ACCOUNT.finditer(v)]
    account = accounts[0] if accounts else None
    environment = config.environment_for_account(account) if account else UNKNOWN
    attributes: dict[str, str] = {}
    if profile:
        attributes["aws.profile"] = profile
        if environment == UNKNOWN and profile in config.environments:
            environment = profile
            attributes["environment.from"] = "aws-profile"
    if region:
        attributes["aws.region"] = region
    rank = 90 if _DESTRUCTIVE_VERB.match(verb) else 70 if _WRITE_VERB.match(verb) else 25
    rid = (
        target
        if target and target.startswith("arn:")
        else (
            f"aws://{account or 'unknown'}/{svc}/{target}"
            if target
            else f"aws://{account or 'unknown'}/{svc}"
        )
    )
    return Guess(rank, f"{svc}:{verb}", clip(rid, 1024), rtype, environment, account, attributes)
