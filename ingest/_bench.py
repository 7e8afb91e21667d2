"""The ingest benchmark: ``normalise_bytes`` records/s per source vs ``json.loads`` of the same bytes.

Internal (``railbook bench ingest`` calls it). For each source a realistic stream is generated
in memory (or read from a file), then, in the same run and on the same bytes, the benchmark
measures the raw decode rate (``json.loads`` of the document, or of every JSON line) and the rate
of ``normalise_bytes`` (decode, validate, map, redact, hash). The ratio is comparable across
machines; absolute rates are not.

Mixes (deterministic for a seed):

- ``cloudtrail``: one ``{"Records": [...]}`` file: reads and writes by IAM users, assumed-role
  sessions (agents, the pipeline) and AWS services; ~5% ``AssumeRole`` responses that carry a
  session token (a secret: those records take the redaction slow path), ~5% failed calls.
- ``claude-code``: JSON lines of hook payloads: Bash commands (git, kubectl, psql to staging, a
  few with a password in the connection string), file edits, prompts.
- ``k8s-audit``: JSON lines of ``audit.k8s.io/v1`` events: gets, lists, patches, deletes, execs.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.deadletter import DeadLetter
from ingest._normalise import normalise_bytes

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["BENCH_SOURCES", "make_stream", "measure", "run_benchmark"]

logger = logging.getLogger(__name__)

_T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ACCOUNTS = ("111122223333", "444455556666", "777788889999")


def _ts(i: int) -> str:
    return (_T0 + timedelta(milliseconds=37 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uuid(rnd: random.Random) -> str:
    h = f"{rnd.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _cloudtrail(i: int, rnd: random.Random) -> dict[str, Any]:
    account = rnd.choice(_ACCOUNTS)
    who = rnd.random()
    if who < 0.35:
        user = rnd.choice(("alice", "bob", "carol"))
        identity: dict[str, Any] = {
            "type": "IAMUser",
            "principalId": "AIDA" + f"{rnd.getrandbits(64):016X}",
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": "AKIA" + f"{rnd.getrandbits(64):016X}",
            "userName": user,
        }
    elif who < 0.85:
        role = rnd.choice(("agent-claude", "deploy-pipeline", "ReadOnly"))
        session = f"s-{rnd.getrandbits(32):08x}"
        identity = {
            "type": "AssumedRole",
            "principalId": f"AROA{rnd.getrandbits(64):016X}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
            "accountId": account,
            "accessKeyId": "ASIA" + f"{rnd.getrandbits(64):016X}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": f"AROA{rnd.getrandbits(64):016X}",
                    "arn": f"arn:aws:iam::{account}:role/{role}",
                    "accountId": account,
                    "userName": role,
                },
                "attributes": {"creationDate": _ts(i), "mfaAuthenticated": "false"},
            },
        }
    else:
        identity = {
            "type": "AWSService",
            "invokedBy": rnd.choice(("ec2.amazonaws.com", "lambda.amazonaws.com")),
        }
    kind = rnd.random()
    params: dict[str, Any] | None
    response: dict[str, Any] | None = None
    if kind < 0.30:
        source, name = "s3.amazonaws.com", rnd.choice(("GetObject", "PutObject", "ListObjects"))
        params = {"bucketName": f"data-{rnd.randrange(40)}", "key": f"exports/{rnd.randrange(10**6)}.csv"}
    elif kind < 0.50:
        source, name = "ec2.amazonaws.com", rnd.choice(("DescribeInstances", "DescribeVolumes"))
        params = {"maxResults": 100, "filterSet": {"items": [{"name": "tag:team", "valueSet": {}}]}}
    elif kind < 0.62:
        source, name = "iam.amazonaws.com", rnd.choice(("GetRole", "AttachRolePolicy", "ListPolicies"))
        params = {
            "roleName": rnd.choice(("app", "etl", "agent-claude")),
            "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        }
    elif kind < 0.74:
        source, name = "dynamodb.amazonaws.com", rnd.choice(("GetItem", "PutItem", "DeleteTable"))
        params = {"tableName": rnd.choice(("orders", "sessions", "ledger"))}
    elif kind < 0.86:
        source, name = "rds.amazonaws.com", rnd.choice(("DescribeDBInstances", "ModifyDBInstance"))
        params = {"dBInstanceIdentifier": rnd.choice(("prod-db", "staging-db"))}
    elif kind < 0.95:
        source, name = "lambda.amazonaws.com", "Invoke20150331"
        params = {"functionName": rnd.choice(("resize", "notify"))}
    else:
        source, name = "sts.amazonaws.com", "AssumeRole"
        params = {"roleArn": f"arn:aws:iam::{account}:role/agent-claude", "roleSessionName": f"s-{i}"}
        response = {
            "credentials": {
                "accessKeyId": "ASIA" + f"{rnd.getrandbits(64):016X}",
                "sessionToken": "IQoJb3JpZ2luX2Vj" + f"{rnd.getrandbits(256):064x}",
                "expiration": "Mar 2, 2026, 10:00:00 AM",
            },
            "assumedRoleUser": {"assumedRoleId": f"AROA{rnd.getrandbits(64):016X}:s-{i}"},
        }
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": _ts(i),
        "eventSource": source,
        "eventName": name,
        "awsRegion": rnd.choice(("eu-west-1", "us-east-1")),
        "sourceIPAddress": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}",
        "userAgent": rnd.choice(
            (
                "aws-cli/2.15.30 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8",
                "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8",
                "console.amazonaws.com",
            )
        ),
        "requestParameters": params,
        "responseElements": response,
        "requestID": _uuid(rnd),
        "eventID": _uuid(rnd),
        "readOnly": name.startswith(("Get", "Describe", "List")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256"},
    }
    if rnd.random() < 0.05:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = f"User is not authorized to perform: {source.split('.')[0]}:{name}"
    return record


_COMMANDS = (
    "git status",
    "git push origin feature/ledger-{i}",
    "kubectl --context staging-eks -n payments get pods",
    "kubectl --context staging-eks -n payments rollout restart deployment/api",
    "psql -h staging-db.internal -d app -c 'SELECT count(*) FROM orders'",
    "psql \"postgresql://migrator:pw{i}x@staging-db.internal:5432/app\" -c 'ALTER TABLE t ADD c int'",
    "pytest -q tests/unit",
    "terraform plan -out plan-{i}.tfplan",
    "aws s3 ls s3://data-{i}/exports/",
    "ls -la src/",
)


def _claude_code(i: int, rnd: random.Random) -> dict[str, Any]:
    base: dict[str, Any] = {
        "session_id": f"sess-{i % 50:04d}",
        "transcript_path": f"/home/dev/.claude/projects/app/{i % 50:04d}.jsonl",
        "cwd": "/home/dev/app",
        "permission_mode": "default",
        "railbook_agent_id": f"agent:claude-{i % 4}",
        "railbook_on_behalf_of": rnd.choice(("alice@example.com", "bob@example.com")),
        "railbook_task": f"JIRA-{100 + i % 30} tidy the orders module",
        "railbook_received_at": _ts(i).replace("Z", ".250000Z"),
    }
    kind = rnd.random()
    if kind < 0.6:
        command = rnd.choice(_COMMANDS).format(i=i)
        return {
            **base,
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": command, "description": "run it", "timeout": 120000},
            "tool_use_id": f"toolu_{i:08d}",
        }
    if kind < 0.9:
        return {
            **base,
            "hook_event_name": "PostToolUse",
            "tool_name": rnd.choice(("Write", "Edit")),
            "tool_input": {
                "file_path": f"/home/dev/app/src/orders/m{i % 40}.py",
                "content": "def f():\n    return 1\n",
            },
            "tool_response": {"filePath": f"/home/dev/app/src/orders/m{i % 40}.py", "success": True},
            "tool_use_id": f"toolu_{i:08d}",
        }
    return {
        **base,
        "hook_event_name": "UserPromptSubmit",
        "prompt": f"Please refactor module {i % 40} and run tests",
    }


def _k8s_audit(i: int, rnd: random.Random) -> dict[str, Any]:
    verb = rnd.choice(("get", "list", "watch", "patch", "delete", "create"))
    resource = rnd.choice(("pods", "deployments", "configmaps", "secrets", "services"))
    name = f"api-{rnd.randrange(20)}"
    ns = rnd.choice(("payments", "default", "kube-system"))
    user = rnd.choice(
        ("system:serviceaccount:ci:deployer", "alice@example.com", "agent:claude-1", "system:kube-scheduler")
    )
    ts = _ts(i).replace("Z", ".548380Z")
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": _uuid(rnd),
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{ns}/{resource}/{name}",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [f"10.0.{rnd.randrange(256)}.{rnd.randrange(256)}"],
        "userAgent": "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
        "objectRef": {"resource": resource, "namespace": ns, "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }


_MAKERS: dict[str, Callable[[int, random.Random], dict[str, Any]]] = {
    "cloudtrail": _cloudtrail,
    "claude-code": _claude_code,
    "k8s-audit": _k8s_audit,
}
#: the sources with a generated mix
BENCH_SOURCES = tuple(_MAKERS)


def make_stream(source: str, n: int, *, seed: int = 7) -> bytes:
    """``n`` generated records of ``source`` as the bytes a file would hold (a CloudTrail log file,
    else JSON lines)."""
    rnd = random.Random(seed)
    records = [_MAKERS[source](i, rnd) for i in range(n)]
    if source == "cloudtrail":
        return json.dumps({"Records": records}).encode("utf-8")
    return b"\n".join(json.dumps(r).encode("utf-8") for r in records)


def _json_loads_all(data: bytes) -> int:
    """The reference: decode the same bytes with ``json.loads`` and nothing else."""
    body = data.lstrip()
    if body[:1] in (b"{", b"["):
        try:
            value = json.loads(data)
        except ValueError:
            pass
        else:
            if isinstance(value, dict) and isinstance(value.get("Records"), list):
                return len(value["Records"])
            return len(value) if isinstance(value, list) else 1
    return sum(1 for line in data.split(b"\n") if line.strip() and json.loads(line) is not None)


def _best(fn: Callable[[], int], repeat: int, min_seconds: float) -> tuple[float, int]:
    """Best wall time of ``fn`` over at least ``repeat`` runs and ``min_seconds`` in total."""
    best = float("inf")
    n = 0
    spent = 0.0
    runs = 0
    while runs < repeat or spent < min_seconds:
        t = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t
        best = min(best, dt)
        spent += dt
        runs += 1
    return best, n


def measure(
    data: bytes, source: str, config: Config, *, repeat: int = 3, min_seconds: float = 0.5
) -> dict[str, Any]:
    """Records/s of ``normalise_bytes`` and of ``json.loads`` over ``data``, in the same run."""
    counts = {"events": 0, "dead_letters": 0, "sensitive": 0}

    def normalise() -> int:
        events = dead = sensitive = 0
        for item in normalise_bytes(data, source=source, origin="bench", config=config):
            if isinstance(item, DeadLetter):
                dead += 1
            else:
                events += 1
                sensitive += bool({"secret", "pci", "pii"} & set(item.resource.data_classes))
        counts.update(events=events, dead_letters=dead, sensitive=sensitive)
        return events + dead

    raw_s, records = _best(lambda: _json_loads_all(data), repeat, min_seconds)
    norm_s, _ = _best(normalise, repeat, min_seconds)
    raw_rate = records / raw_s if raw_s else 0.0
    norm_rate = records / norm_s if norm_s else 0.0
    return {
        "records": records,
        "bytes": len(data),
        **counts,
        "json_loads_per_s": round(raw_rate),
        "normalise_per_s": round(norm_rate),
        "ratio": round(norm_rate / raw_rate, 4) if raw_rate else None,
        "us_per_record": round(1e6 * norm_s / records, 1) if records else None,
    }


def run_benchmark(
    config: Config,
    *,
    records: int = 2000,
    sources: tuple[str, ...] = BENCH_SOURCES,
    repeat: int = 3,
    min_seconds: float = 0.5,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``measure`` on a generated stream of each source; returns results keyed by source."""
    out: dict[str, Any] = {"records_per_source": records, "seed": seed, "sources": {}}
    for source in sources:
        if progress is not None:
            progress(source)
        data = make_stream(source, records, seed=seed)
        out["sources"][source] = measure(data, source, config, repeat=repeat, min_seconds=min_seconds)
        logger.info("bench ingest source=%s %s", source, out["sources"][source])
    return out
