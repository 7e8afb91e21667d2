"""``railbook bench gate``: gate latency in-process and over HTTP, with a bare cedarpy decision as
the reference, all in one run on a fresh ledger in a temporary directory."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import Config

__all__ = ["BENCH_CONFIG", "run_gate_bench"]

logger = logging.getLogger(__name__)

#: environments and identities like the demo's
BENCH_CONFIG: dict[str, Any] = {
    "environments": {
        "prod": {
            "aws_accounts": ["111111111111"],
            "db_hosts": ["prod-db.internal"],
            "protected_branches": ["main"],
        },
        "staging": {"aws_accounts": ["222222222222"], "db_hosts": ["staging-db.internal"]},
        "dev": {"aws_accounts": ["333333333333"], "db_hosts": ["localhost"]},
    },
    "identities": {"approvers": ["alice@example.com"]},
}

_COMMANDS = (
    "npm test",  # allow
    "psql -h staging-db.internal -d app -c 'DROP TABLE users'",  # ask
    "psql -h prod-db.internal -d app -c 'ALTER TABLE users ADD COLUMN x int'",  # deny
)


def _payload(i: int) -> dict[str, Any]:
    return {
        "session_id": "bench",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": _COMMANDS[i % len(_COMMANDS)], "description": "bench"},
        "tool_use_id": f"toolu_bench_{i}",
        "railbook_agent_id": "agent:bench",
        "railbook_on_behalf_of": "bob@example.com",
        "railbook_task": "BENCH-1",
    }


def _stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    n = len(ms)
    return {
        "n": n,
        "p50": ms[n // 2],
        "p99": ms[min(n - 1, int(n * 0.99))],
        "mean": statistics.fmean(ms),
        "max": ms[-1],
    }


def _time(fn: Callable[[int], Any], n: int, warmup: int = 10) -> list[float]:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def _bare_cedar(config: Config, n: int) -> list[float]:
    """Replay, with bare cedarpy, the exact request and entities the engine sends for one gate ask."""
    import cedarpy

    from core.event import Actor, CanonicalEvent, Change, Resource
    from policy import ApprovalBook, PolicyEngine

    engine = PolicyEngine.load(config)
    captured: dict[str, Any] = {}
    from policy import _engine

    original = _engine._cedar_batch

    def spy(requests: Any, policies: Any, entities: Any, schema: Any = None) -> Any:
        captured.update(requests=requests, policies=policies, entities=entities, schema=schema)
        return original(requests, policies, entities, schema)

    event = CanonicalEvent(
        event_id="gate:bench",
        occurred_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
        source="gate",
        actor=Actor("agent:bench", "agent", on_behalf_of="bob@example.com", session="bench"),
        action="sql:DropTable",
        resource=Resource("db://staging-db.internal/app", "database", "staging"),
        change=Change(task="BENCH-1", diff_sha256="0" * 64),
    )
    # the engine's private seam, patched for one call: the reference must be the request it sends
    _engine._cedar_batch = spy  # type: ignore[assignment]
    try:
        engine.evaluate([event], approvals=ApprovalBook(config), mode="gate")
    finally:
        _engine._cedar_batch = original
    if not captured:
        raise RuntimeError("bench: could not capture the engine's cedar request (policy engine changed)")
    args = [captured[k] for k in ("requests", "policies", "entities", "schema")]

    def one(_: int) -> None:
        cedarpy.is_authorized_batch(*args)

    return _time(one, n)


def run_gate_bench(n: int = 300, *, http: bool = True) -> dict[str, Any]:
    """Measure and return ``{"latency_ms": {name: {n,p50,p99,mean,max}}, "ratios": …, "target_met": …}``."""
    from railbook.gate._gate import Gate
    from railbook.gate._proposal import proposal_from_hook
    from railbook.wiring import open_pipeline

    latency: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="railbook-bench-gate-") as tmp:
        base = {**BENCH_CONFIG, "ledger": {"path": str(Path(tmp) / "inproc" / "ledger.duckdb")}}
        config = Config.model_validate(base)
        latency["bare cedarpy decision"] = _stats(_bare_cedar(config, n))
        with open_pipeline(config) as pipeline:
            gate = Gate.in_process(pipeline)
            latency["gate in-process"] = _stats(
                _time(lambda i: gate.ask(proposal_from_hook(_payload(i), config)), n)
            )
        if http:
            latency["gate over HTTP (loopback)"] = _stats(_http_samples(tmp, n))
            # The deployed shape: the hook's HTTP client in one process, `railbook up` in another,
            # so the client does not compete with the server for the same interpreter lock.
            latency["gate over HTTP, railbook up process"] = _stats(_up_process_samples(tmp, n))
    results: dict[str, Any] = {"requests": n, "latency_ms": latency, "mix": list(_COMMANDS)}
    bare = latency["bare cedarpy decision"]["p50"]
    results["ratios"] = {f"{k} / bare (p50)": v["p50"] / bare for k, v in latency.items() if bare > 0}
    if http:
        results["target_met"] = latency["gate over HTTP, railbook up process"]["p99"] < 10.0
    return results


def _http_samples(tmp: str, n: int) -> list[float]:
    import httpx

    from railbook.gate._client import nodelay_transport
    from railbook.gate._gate import Gate
    from railbook.gate._http import standalone_app
    from railbook.gate._server import LoopbackServer
    from railbook.service.auth import TokenTable, new_token
    from railbook.service.writer import Writer

    config = Config.model_validate(
        {**BENCH_CONFIG, "ledger": {"path": str(Path(tmp) / "http" / "ledger.duckdb")}}
    )
    token = new_token()
    with Writer.for_config(config) as writer:
        app = standalone_app(Gate.over_writer(writer, config), TokenTable.with_admin(token))
        with (
            LoopbackServer(app) as srv,
            httpx.Client(
                base_url=srv.url, headers={"Authorization": f"Bearer {token}"}, transport=nodelay_transport()
            ) as client,
        ):

            def one(i: int) -> None:
                r = client.post("/v1/gate", json={"hook": _payload(i)})
                r.raise_for_status()

            return _time(one, n)


def _up_process_samples(tmp: str, n: int) -> list[float]:
    """Gate latency against a real ``railbook up`` subprocess on a free loopback port."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    from railbook.gate._client import nodelay_transport

    home = Path(tmp) / "up"
    home.mkdir(parents=True, exist_ok=True)
    config_path = home / "railbook.toml"
    lines = [f'[ledger]\npath = "{(home / "ledger.duckdb").as_posix()}"\n']
    for name, env in BENCH_CONFIG.get("environments", {}).items():
        lines.append(f"[environments.{name}]")
        lines.extend(f"{k} = {list(v)!r}".replace("'", '"') for k, v in env.items())
    lines.append("[identities]")
    lines.extend(
        f"{k} = {list(v)!r}".replace("'", '"') for k, v in BENCH_CONFIG.get("identities", {}).items()
    )
    config_path.write_text("\n".join(lines) + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAILBOOK_LOGLEVEL": "WARNING"}
    env.pop("RAILBOOK_LEDGER", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "railbook",
            "--config",
            str(config_path),
            "up",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
            "--no-alerts",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"railbook up exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("railbook up did not become ready within 60 s")
            time.sleep(0.2)
        token = (home / "service.token").read_text().strip()
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, transport=nodelay_transport()
        ) as client:

            def one(i: int) -> None:
                r = client.post("/v1/gate", json={"hook": _payload(i)})
                r.raise_for_status()

            return _time(one, n)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
