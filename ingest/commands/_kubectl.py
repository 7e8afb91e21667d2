"""``kubectl`` / ``oc``: ``--context`` → cluster → environment; verb + kind → ``k8s:<verb>:<resource>``."""

from __future__ import annotations

import logging

from core.config import Config
from core.event import UNKNOWN
from ingest._common import clip
from ingest.commands._facts import Guess
from ingest.commands._shell import opt

__all__ = ["classify_kubectl"]

logger = logging.getLogger(__name__)


_K8S_KINDS = {
    "po": "pods",
    "pod": "pods",
    "deploy": "deployments",
    "deployment": "deployments",
    "svc": "services",
    "service": "services",
    "ns": "namespaces",
    "namespace": "namespaces",
    "cm": "configmaps",
    "configmap": "configmaps",
    "secret": "secrets",
    "sa": "serviceaccounts",
    "serviceaccount": "serviceaccounts",
    "no": "nodes",
    "node": "nodes",
    "ds": "daemonsets",
    "daemonset": "daemonsets",
    "sts": "statefulsets",
    "statefulset": "statefulsets",
    "rs": "replicasets",
    "replicaset": "replicasets",
    "ing": "ingresses",
    "ingress": "ingresses",
    "pv": "persistentvolumes",
    "pvc": "persistentvolumeclaims",
    "job": "jobs",
    "cj": "cronjobs",
    "cronjob": "cronjobs",
    "crd": "customresourcedefinitions",
    "role": "roles",
    "rolebinding": "rolebindings",
    "clusterrole": "clusterroles",
    "clusterrolebinding": "clusterrolebindings",
    "netpol": "networkpolicies",
    "networkpolicy": "networkpolicies",
    "hpa": "horizontalpodautoscalers",
}
_K8S_VERBS = {
    "get": ("get", None, 20),
    "describe": ("get", None, 20),
    "delete": ("delete", None, 90),
    "apply": ("apply", None, 70),
    "create": ("create", None, 70),
    "replace": ("update", None, 70),
    "edit": ("update", None, 70),
    "patch": ("patch", None, 70),
    "label": ("patch", None, 50),
    "annotate": ("patch", None, 50),
    "scale": ("update", "scale", 70),
    "rollout": ("patch", None, 70),
    "set": ("patch", None, 70),
    "exec": ("create", "exec", 85),
    "cp": ("create", "exec", 80),
    "attach": ("create", "attach", 85),
    "port-forward": ("create", "portforward", 60),
    "logs": ("get", "log", 20),
    "drain": ("patch", None, 75),
    "cordon": ("patch", None, 60),
    "uncordon": ("patch", None, 60),
    "taint": ("patch", None, 60),
    "debug": ("create", "ephemeralcontainers", 85),
}
_POD_VERBS = frozenset({"exec", "cp", "attach", "port-forward", "logs", "debug"})


def _k8s_kind(text: str) -> str:
    kind = text.lower().split(".")[0]
    if kind in _K8S_KINDS:
        return _K8S_KINDS[kind]
    return kind if kind.endswith("s") else kind + "s"


def classify_kubectl(args: list[str], config: Config) -> Guess:
    context = cluster = namespace = None
    files: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        for names, key in (
            (("--context",), "context"),
            (("--cluster",), "cluster"),
            (("-n", "--namespace"), "namespace"),
            (("-f", "--filename"), "file"),
        ):
            val, j = opt(args, i, names)
            if j != i:
                if key == "context":
                    context = val
                elif key == "cluster":
                    cluster = val
                elif key == "namespace":
                    namespace = val
                elif val:
                    files.append(val)
                i = j
                break
        else:
            if a in (
                "--kubeconfig",
                "--user",
                "-c",
                "--container",
                "-l",
                "--selector",
                "-o",
                "--output",
                "--replicas",
                "--type",
                "-p",
                "--patch",
                "--image",
            ):
                i += 2
            elif a.startswith("-"):
                i += 1
            else:
                positional.append(a)
                i += 1
    verb_word = positional[0] if positional else ""
    verb, sub, rank = _K8S_VERBS.get(verb_word, (verb_word or "unknown", None, 30))
    rest = positional[1:]
    if verb_word == "rollout" and rest:
        rest = rest[1:]  # rollout restart|undo|status <kind>
    kind = name = None
    if verb_word in _POD_VERBS:
        kind = "pods"
        if rest:
            target = rest[0].split(":")[0] if verb_word == "cp" else rest[0]
            if "/" in target:
                k, _, target = target.partition("/")
                kind = _k8s_kind(k)
            name = target
    elif rest:
        if "/" in rest[0]:
            k, _, name = rest[0].partition("/")
            kind = _k8s_kind(k)
        else:
            kind = _k8s_kind(rest[0].split(",")[0])
            name = rest[1] if len(rest) > 1 else None
    elif files:
        kind = "manifests"
    if verb_word == "config":
        verb, kind, rank = "config", "kubeconfig", 5
    kind = kind or "unknown"
    resource_type = f"{kind}/{sub}" if sub else kind
    cluster_name = context or cluster
    environment = config.environment_for_cluster(cluster_name) if cluster_name else UNKNOWN
    if verb == "get" and kind == "secrets":
        rank = 60
    attributes = {"k8s.verb": verb_word}
    if context:
        attributes["kube.context"] = context
    if cluster:
        attributes["kube.cluster"] = cluster
    if namespace:
        attributes["k8s.namespace"] = namespace
    if files:
        attributes["k8s.file"] = clip(files[0], 512)
    rid = f"k8s://{cluster_name or 'current-context'}/{namespace or '_'}/{kind}/{name or '*'}"
    return Guess(
        rank, f"k8s:{verb}:{resource_type}", rid, f"k8s:{kind}", environment, cluster_name, attributes
    )
