"""Kubernetes audit adapter on the real Falco trace files and hostile variants."""

from __future__ import annotations

import copy
import json

import pytest

from ingest import normalise_record
from tests.unit.ingest.helpers import run

FALCO = "k8s/falco-trace-files/"


def _line(path):
    return json.loads(path.read_text().splitlines()[0])


def test_every_trace_file_normalises(asset, config):
    root = asset(FALCO + "exec_pod.json").parent
    total = 0
    for path in sorted(root.glob("*.json")):
        events, dead = run(path.read_bytes(), config, source="k8s-audit", origin=path.name)
        assert dead == [], dead
        for ev in events:
            assert ev.action.startswith("k8s:") and ev.event_id.startswith("k8s:")
        total += len(events)
    assert total == 25  # PROVENANCE.md: 25 events in 20 files


def test_auto_detection_of_v1beta1_and_trimmed_events(asset, config):
    events, dead = run(asset(FALCO + "delete_deployment.json").read_bytes(), config)  # no apiVersion
    assert dead == []
    [ev] = events
    assert ev.action == "k8s:delete:deployments"
    assert ev.event_id == "k8s:8bb19a30-3d68-4fd7-999e-90a9014afac0"
    assert ev.actor.id == "minikube-user"
    assert ev.resource.id == "k8s://unknown/default/deployments/nginx-deployment"
    assert ev.resource.type == "k8s:deployments"


def test_exec_into_pod(asset, config):
    [ev] = run(asset(FALCO + "exec_pod.json").read_bytes(), config)[0]
    assert ev.action == "k8s:create:pods/exec"
    assert ev.attributes["pod_exec"] == "true"
    assert ev.attributes["exec_command"] == "bash"
    assert ev.resource.id == "k8s://unknown/default/pods/nginx-deployment-7998647bdf-phvq7"


def test_cluster_from_annotation_or_file_name(asset, config):
    record = _line(asset(FALCO + "delete_deployment.json"))
    record["annotations"]["railbook.io/cluster"] = "prod-eks-1"
    [ev] = normalise_record(record, source="k8s-audit", where="x:1", config=config)
    assert ev.resource.environment == "prod" and ev.resource.account == "prod-eks-1"
    events, _ = run(
        asset(FALCO + "delete_deployment.json").read_bytes(), config, origin="logs/minikube/audit.log"
    )
    assert events[0].resource.environment == "dev"
    assert events[0].resource.id.startswith("k8s://minikube/")


def test_secret_read_and_impersonation(asset, config):
    record = _line(asset(FALCO + "create_secret.json"))
    record = copy.deepcopy(record)
    record["verb"] = "get"  # synthetic: a read of the same secret, impersonating a human
    record["user"]["username"] = "agent:deployer"
    record["impersonatedUser"] = {"username": "alice@example.com"}
    [ev] = normalise_record(record, source="k8s-audit", where="x", config=config)
    assert ev.action == "k8s:get:secrets"
    assert ev.attributes["secret_read"] == "true"
    assert "secret" in ev.resource.data_classes
    assert ev.actor.kind == "agent" and ev.actor.credential == "alice@example.com"


def test_secret_payload_not_in_raw(asset, config):
    record = _line(asset(FALCO + "create_secret.json"))
    record["requestObject"] = {"kind": "Secret", "data": {"password": "c3VwZXJzZWNyZXQ="}}
    [ev] = normalise_record(record, source="k8s-audit", where="x", config=config)
    assert "c3VwZXJzZWNyZXQ=" not in (ev.raw or "")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda r: r.pop("auditID"), "missing-field"),
        (lambda r: r.pop("user"), "missing-field"),
        (lambda r: r.update(verb=7), "schema"),
        (lambda r: r.update(kind="Policy"), "shape"),
        (
            lambda r: [r.pop(k, None) for k in ("requestReceivedTimestamp", "stageTimestamp", "timestamp")],
            "missing-field",
        ),
        (lambda r: r.update(requestReceivedTimestamp="2018-10-26T13:09:27"), "bad-time"),
    ],
)
def test_hostile_lines(asset, config, edit, reason):
    record = _line(asset(FALCO + "delete_deployment.json"))
    bad = copy.deepcopy(record)
    edit(bad)
    data = (json.dumps(record) + "\n" + json.dumps(bad) + "\n").encode()
    events, dead = run(data, config, source="k8s-audit", origin="audit.log")
    assert len(events) == 1
    assert [d.reason for d in dead] == [reason] and dead[0].where == "audit.log:2"
