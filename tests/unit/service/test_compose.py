"""docker-compose.yml, the Dockerfile and deploy/railbook.toml, checked without Docker.

``compose_spec.json`` beside this file is the Compose Specification JSON schema as shipped in
docker-compose 1.29.2 (``compose/config/compose_spec.json``, Apache-2.0; compose-spec/compose-spec).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from alerts import alerts_settings
from core.config import load_config
from railbook.cli import main
from railbook.service import server_settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose_spec.json")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_catches_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["kafka"]["restart_policy_typo"] = "always"
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def _named_volumes(service: dict[str, Any]) -> set[str]:
    out = set()
    for v in service.get("volumes", []):
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src and not src.startswith((".", "/", "~")):
            out.add(src)
    return out


def test_services_volumes_and_dependencies_are_consistent(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes", {}))
    used = set().union(*(_named_volumes(s) for s in services.values()))
    assert used == declared, f"used {used} vs declared {declared}"
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
            cond = svc["depends_on"][dep]["condition"]
            if cond == "service_healthy":
                hc = services[dep].get("healthcheck", {})
                assert hc.get("test") or "build" in services[dep], f"{dep} has no healthcheck for {name}"
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"{name} mounts missing {src}"
    published = [p.split(":")[-2] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), published
    # each writer of a ledger has a volume of its own: DuckDB admits one writing process per file
    writers = [n for n, s in services.items() if s.get("command", [""])[0] in ("serve", "up")]
    ledger_volumes = [next(iter(_named_volumes(services[n]))) for n in writers]
    assert len(ledger_volumes) == len(set(ledger_volumes)) == 2


def test_kafka_is_the_official_image_in_kraft_mode_with_a_persistent_volume(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert any(v.endswith(":" + env["KAFKA_LOG_DIRS"]) for v in kafka["volumes"])
    bootstrap = re.search(r"PLAINTEXT://([\w.-]+:\d+)", env["KAFKA_ADVERTISED_LISTENERS"])
    assert bootstrap is not None
    serve = compose["services"]["railbook-serve"]["command"]
    assert serve[serve.index("--kafka") + 1] == bootstrap.group(1)


def test_railbook_commands_parse_with_the_real_cli(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if "build" not in svc:
            continue
        cmd = svc["command"]
        ctx = main.make_context("railbook", list(cmd), resilient_parsing=True)
        sub = main.get_command(ctx, cmd[0])
        assert isinstance(sub, click.Command), f"{name}: unknown command {cmd[0]}"
        sub.make_context(cmd[0], list(cmd[1:]), parent=ctx)  # raises UsageError on a bad flag
        env = svc["environment"]
        mounts = {v.split(":")[1] for v in svc["volumes"]}
        assert env["RAILBOOK_CONFIG"] in mounts
        assert any(env["RAILBOOK_LEDGER"].startswith(m + "/") for m in mounts)


def test_the_mounted_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAILBOOK_LEDGER", raising=False)
    config = load_config(ROOT / "deploy" / "railbook.toml")
    settings = server_settings(config)
    assert settings.host == "0.0.0.0" and settings.port == 8477
    assert [s.type for s in alerts_settings(config).effective_sinks()] == ["log"]


def test_dockerfile_copies_every_package_and_runs_railbook() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for pkg in ("core", "ingest", "policy", "ledger", "dashboard", "alerts", "railbook"):
        assert re.search(rf"^COPY {pkg} {pkg}$", text, re.M), pkg
    assert 'ENTRYPOINT ["railbook"]' in text
    assert "USER railbook" in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "**/signing.key" in ignore and ".venv" in ignore
