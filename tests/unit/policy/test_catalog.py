"""Catalog resolution: exact beats pattern, most literal pattern wins, refinements, unknowns."""

from __future__ import annotations

from policy import PolicyEngine


def test_resolution(engine: PolicyEngine) -> None:
    c = engine.catalog
    assert c.resolve("sql:DropTable", {}, "prod").cedar_action == "sql:DropTable"
    assert c.resolve("k8s:delete:deployments", {}, "prod").cedar_action == "k8s:delete:*"
    assert c.resolve("iam:GetFederationToken", {}, "prod").cedar_action == "*:Get*"
    assert c.resolve("sts:GetFederationToken", {}, "prod").cedar_action == "sts:GetFederationToken"
    r = c.resolve("sql:Delete", {"sql.where": "false"}, "staging")
    assert r.cedar_action == "sql:Delete:all-rows" and r.destructive
    assert not c.resolve("sql:Delete", {"sql.where": "true"}, "staging").destructive
    u = c.resolve("brand:New", {}, "prod")
    assert u.unknown and u.destructive
    u2 = c.resolve("brand:New", {}, "dev")
    assert u2.unknown and not u2.destructive and "Change" in u2.groups
