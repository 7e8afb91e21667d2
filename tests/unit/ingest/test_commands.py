"""classify_command: what a shell command does and where, from the command line alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.event import sha256_hex
from ingest import classify_command
from ingest.commands import classify_sql

CASES = [
    # (command, action, resource id, environment)
    (
        'psql "postgresql://migrator:s3cr3t@prod-db.internal:5432/ledger" -c "ALTER TABLE accounts ADD c"',
        "sql:AlterTable",
        "db://prod-db.internal/ledger",
        "prod",
    ),
    (
        "PGPASSWORD=x psql -h PROD-DB.internal -U m -d ledger -c 'DROP TABLE t; SELECT 1'",
        "sql:DropTable",
        "db://prod-db.internal/ledger",
        "prod",
    ),
    (
        "psql -h prod-db.internal ledger <<'SQL'\nTRUNCATE accounts;\nSQL",
        "sql:Truncate",
        "db://prod-db.internal/ledger",
        "prod",
    ),
    (
        "echo 'DELETE FROM users' | mysql -h dev-db.internal -u root -psecret app",
        "sql:Delete",
        "db://dev-db.internal/app",
        "dev",
    ),
    (
        'psql "host=prod-db.internal dbname=ledger" -f migrate.sql',
        "sql:RunScript",
        "db://prod-db.internal/ledger",
        "prod",
    ),
    ("psql -c 'select * from t'", "sql:Select", "db://localhost/", "dev"),
    ("dropdb -h prod-db.internal ledger", "sql:DropDatabase", "db://prod-db.internal/ledger", "prod"),
    (
        "kubectl --context prod-eks delete deploy/api -n payments",
        "k8s:delete:deployments",
        "k8s://prod-eks/payments/deployments/api",
        "prod",
    ),
    (
        "kubectl exec -it api-0 --context=minikube -- sh",
        "k8s:create:pods/exec",
        "k8s://minikube/_/pods/api-0",
        "dev",
    ),
    ("kubectl get secrets", "k8s:get:secrets", "k8s://current-context/_/secrets/*", "unknown"),
    (
        "terraform -chdir=envs/prod destroy -auto-approve",
        "terraform:Destroy",
        "terraform://envs/prod",
        "prod",
    ),
    ("terraform apply -destroy", "terraform:Destroy", "terraform://.", "unknown"),
    (
        "aws iam create-access-key --user-name agent-bot --profile prod",
        "iam:CreateAccessKey",
        "aws://unknown/iam/agent-bot",
        "prod",
    ),
    (
        "aws cloudtrail stop-logging --name arn:aws:cloudtrail:us-east-1:111122223333:trail/main",
        "cloudtrail:StopLogging",
        "arn:aws:cloudtrail:us-east-1:111122223333:trail/main",
        "prod",
    ),
    ("aws s3 rb s3://audit-logs --force", "s3:DeleteBucket", "arn:aws:s3:::audit-logs", "unknown"),
    ("git push -f origin main", "git:ForcePush", "origin@main", "prod"),
    ("git push origin +feature", "git:ForcePush", "origin@feature", "unknown"),
    ("git push origin --delete main", "git:DeleteBranch", "origin@main", "prod"),
    ("git push origin :main", "git:DeleteBranch", "origin@main", "prod"),
    ("sudo rm -rf /var/lib/postgresql", "file:Delete", "file:///var/lib/postgresql", "unknown"),
    ("cd app && npm test", "shell:Exec", "cmd://cd", "unknown"),
]


@pytest.mark.parametrize(("command", "action", "rid", "env"), CASES)
def test_classify(config, command, action, rid, env):
    facts = classify_command(command, config)
    assert (facts.action, facts.resource.id, facts.resource.environment) == (action, rid, env)
    assert facts.digest == sha256_hex(command.encode())


def test_secrets_redacted_and_flagged(config):
    facts = classify_command("mysql -h prod-db.internal -uroot -pTopSecret1 -e 'DROP DATABASE x'", config)
    assert "TopSecret1" not in facts.redacted and "secret" in facts.data_classes
    assert facts.action == "sql:DropDatabase"
    facts = classify_command("sshpass -p hunter22 ssh host", config)
    assert "hunter22" not in facts.redacted


def test_most_consequential_segment_wins(config):
    facts = classify_command(
        "git status; kubectl --context prod-1 get pods && kubectl --context prod-1 delete ns x", config
    )
    assert facts.action == "k8s:delete:namespaces"
    assert facts.attributes["shell.actions"] == "git:Status,k8s:get:pods,k8s:delete:namespaces"


def test_sql_statement_kinds():
    assert classify_sql("/* x */ alter table if exists public.accounts drop column y; -- c\nselect 1") == [
        ("AlterTable", "public.accounts"),
        ("Select", None),
    ]
    assert classify_sql("CREATE UNIQUE INDEX CONCURRENTLY i ON t(x)") == [("CreateIndex", None)]
    assert classify_sql("WITH d AS (DELETE FROM t RETURNING *) SELECT 1") == [("Delete", None)]
    assert classify_sql("GRANT ALL ON t TO agent") == [("Grant", None)]
    assert classify_sql("INSERT INTO ledger.entries VALUES (1)") == [("Insert", "ledger.entries")]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(config, command):
    facts = classify_command(command, config)
    assert ":" in facts.action and facts.resource.id
