"""Violating records for each intake endpoint (under the demo config of tests/conftest.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "assets"


def agent_in_prod(event_id: str, actor: str = "agent:claude-1") -> dict[str, Any]:
    """An agent altering a production table: rails 1-4."""
    return {
        "event_id": event_id,
        "occurred_at": "2026-01-02T03:04:05Z",
        "source": "agent",
        "actor": {"id": actor, "kind": "agent", "on_behalf_of": "bob@example.com"},
        "action": "sql:AlterTable",
        "resource": {"id": "db://prod-db.internal/payments", "type": "database"},
    }


def cloudtrail_log() -> dict[str, Any]:
    """An agent role in the prod account stopping CloudTrail logging (audit-trail tampering)."""
    return {
        "Records": [
            {
                "eventVersion": "1.08",
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": "AROAEXAMPLE:agent-session",
                    "arn": "arn:aws:sts::111111111111:assumed-role/agent-claude/agent-session",
                    "accountId": "111111111111",
                    "accessKeyId": "ASIAEXAMPLE",
                    "sessionContext": {
                        "sessionIssuer": {
                            "type": "Role",
                            "arn": "arn:aws:iam::111111111111:role/agent-claude",
                            "accountId": "111111111111",
                            "userName": "agent-claude",
                        }
                    },
                },
                "eventTime": "2026-01-02T03:04:05Z",
                "eventSource": "cloudtrail.amazonaws.com",
                "eventName": "StopLogging",
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.7",
                "userAgent": "aws-cli/2.15.0",
                "requestParameters": {"name": "arn:aws:cloudtrail:us-east-1:111111111111:trail/main"},
                "responseElements": None,
                "requestID": "11111111-2222-3333-4444-555555555555",
                "eventID": "ct-stop-0001",
                "readOnly": False,
                "eventType": "AwsApiCall",
                "recipientAccountId": "111111111111",
            }
        ]
    }


def k8s_event_list() -> dict[str, Any]:
    """An agent deleting a deployment in the prod cluster."""
    return {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": [
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": "k8s-del-0001",
                "stage": "ResponseComplete",
                "requestURI": "/apis/apps/v1/namespaces/payments/deployments/api",
                "verb": "delete",
                "user": {"username": "agent:claude-1", "groups": ["system:authenticated"]},
                "sourceIPs": ["10.0.0.7"],
                "objectRef": {
                    "resource": "deployments",
                    "namespace": "payments",
                    "name": "api",
                    "apiGroup": "apps",
                    "apiVersion": "v1",
                },
                "responseStatus": {"metadata": {}, "code": 200},
                "requestReceivedTimestamp": "2026-01-02T03:04:05.000000Z",
                "stageTimestamp": "2026-01-02T03:04:05.100000Z",
            }
        ],
    }


def github_push() -> dict[str, Any]:
    """A bot (agent) force-pushing to the protected ``main`` branch."""
    doc: dict[str, Any] = json.loads(
        (FIXTURES / "github" / "push.default-branch.new-branch.json").read_text()
    )
    doc = copy.deepcopy(doc)
    doc["ref"] = "refs/heads/main"
    doc["forced"] = True
    doc["created"] = False
    doc["sender"]["login"] = "claude[bot]"
    doc["pusher"] = {"name": "claude[bot]", "email": "bot@example.com"}
    return doc
