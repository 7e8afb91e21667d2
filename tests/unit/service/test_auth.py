from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError
from railbook.service.auth import (
    Principal,
    TokenTable,
    ensure_local_token,
    hash_token,
    install_auth,
    new_token,
    require,
)
from railbook.service.problems import install_error_handlers
from railbook.service.settings import TokenSpec


def _app(table: TokenTable) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_auth(app, table)

    @app.get("/ingest")
    def ingest(p: Principal = Depends(require("ingest"))) -> dict[str, object]:  # noqa: B008
        return {"name": p.name, "actor": p.actor}

    @app.get("/gate")
    def gate(p: Principal = Depends(require("agent", "approver"))) -> dict[str, object]:  # noqa: B008
        return {"name": p.name}

    return app


CI = "rbk_ci-token"
ADMIN = "rbk_admin-token"


@pytest.fixture
def client() -> TestClient:
    table = TokenTable(
        [
            TokenSpec(name="ci", sha256=hash_token(CI), roles=["ingest"], actor="pipeline:ci"),
            TokenSpec(name="root", sha256=hash_token(ADMIN), roles=["admin"]),
        ]
    )
    return TestClient(_app(table))


def test_missing_token_is_401_with_challenge(client: TestClient) -> None:
    r = client.get("/ingest")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert "Authorization: Bearer" in r.json()["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_unknown_token_is_401(client: TestClient) -> None:
    r = client.get("/ingest", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert "unknown API token" in r.json()["message"]


def test_wrong_scheme_is_401(client: TestClient) -> None:
    assert client.get("/ingest", headers={"Authorization": f"Basic {CI}"}).status_code == 401


def test_wrong_role_is_403_and_names_roles(client: TestClient) -> None:
    r = client.get("/gate", headers={"Authorization": f"Bearer {CI}"})
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "forbidden"
    assert "'agent' or 'approver'" in body["message"] and "ingest" in body["message"]


def test_right_role_returns_principal(client: TestClient) -> None:
    r = client.get("/ingest", headers={"Authorization": f"Bearer {CI}"})
    assert r.status_code == 200
    assert r.json() == {"name": "ci", "actor": "pipeline:ci"}


def test_admin_passes_every_role(client: TestClient) -> None:
    for path in ("/ingest", "/gate"):
        assert client.get(path, headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200


def test_unknown_role_rejected_at_definition() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        require("root")


def test_duplicate_token_names_rejected() -> None:
    spec = TokenSpec(name="a", sha256=hash_token("x"), roles=["ingest"])
    with pytest.raises(ConfigError, match="unique"):
        TokenTable([spec, spec])


def test_token_spec_requires_hex_hash() -> None:
    with pytest.raises(ValueError):
        TokenSpec(name="a", sha256="not-hex", roles=["ingest"])


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_authenticate_matches_only_its_token(token: str, other: str) -> None:
    table = TokenTable([TokenSpec(name="t", sha256=hash_token(token), roles=["agent"])])
    assert table.authenticate(token) == Principal("t", frozenset({"agent"}), None)
    assert (table.authenticate(other) is None) == (other != token)


def test_local_token_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "service.token"
    token, created = ensure_local_token(path)
    assert created and token.startswith("rbk_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created2 = ensure_local_token(path)
    assert (again, created2) == (token, False)
    table = TokenTable.with_admin(token)
    p = table.authenticate(token)
    assert p is not None and p.has("approver")


def test_local_token_with_loose_mode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "service.token"
    path.write_text(new_token())
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        ensure_local_token(path)
