"""`lendstack apikey …` and `lendstack serve`, registered into a small typer app as main.py will."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from lendstack.api import create_app
from lendstack.cli import apikeys, serve
from lendstack.settings import Settings
from lendstack.storage.apikeys import Role, SqlApiKeys, hash_key


def _cli() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Test root."""

    apikeys.register(root)
    serve.register(root)
    return root


@pytest.fixture
def run(database_url: str, engine: Engine):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    app = _cli()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), env={"LENDSTACK_DATABASE_URL": database_url})

    return invoke


def test_create_prints_only_the_key_and_stores_its_digest(run, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    result = run("apikey", "create", "--role", "risk")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("lsk_")
    assert "\n" not in key
    assert len(key) > 40
    stored = SqlApiKeys(engine).find(key)
    assert stored is not None
    assert stored.role is Role.RISK
    assert stored.prefix == key[:12]
    client = TestClient(create_app(Settings(), engine=engine))
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/loans/1", headers=auth).status_code == 404  # authenticated; no loan
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT key_sha256, prefix FROM api_keys").all()
    assert [tuple(r) for r in rows] == [(hash_key(key), key[:12])]  # the digest, never the key


def test_create_channel_and_partner_keys(run, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    channel = run("apikey", "create", "--role", "channel", "--channel", "meituan").stdout.strip()
    partner = run("apikey", "create", "--role", "partner", "--partner", "bank-b").stdout.strip()
    keys = SqlApiKeys(engine)
    assert keys.find(channel).channel == "meituan"  # type: ignore[union-attr]
    assert keys.find(partner).partner_id == "bank-b"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--role", "admin"], "--role"),
        (["--role", "channel"], "--channel"),
        (["--role", "partner"], "--partner"),
        (["--role", "risk", "--partner", "bank-a"], "--partner"),
    ],
)
def test_create_refuses_bad_scopes(run, engine: Engine, args: list[str], named: str) -> None:  # type: ignore[no-untyped-def]
    result = run("apikey", "create", *args)
    assert result.exit_code == 2
    assert named in result.output
    assert SqlApiKeys(engine).all() == ()


def test_list_and_revoke(run, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    key = run("apikey", "create", "--role", "regulator").stdout.strip()
    listed = run("apikey", "list", "--format", "json")
    assert listed.exit_code == 0
    assert key not in listed.stdout
    assert '"prefix": "' + key[:12] in listed.stdout
    assert run("apikey", "revoke", key[:12]).exit_code == 0
    revoked = SqlApiKeys(engine).find(key)
    assert revoked is not None
    assert revoked.revoked_at is not None
    client = TestClient(create_app(Settings(), engine=engine))
    assert client.get("/v1/loans/1", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    again = run("apikey", "revoke", key[:12])
    assert again.exit_code != 0


_SERVE = """
import typer
from lendstack.cli import serve
root = typer.Typer()
root.callback()(lambda: None)
serve.register(root)
root()
"""


@pytest.mark.slow
def test_serve_dev_initialises_the_database_and_prints_a_working_key(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LENDSTACK_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db"}
    cmd = [sys.executable, "-c", _SERVE, "serve", "--dev", "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert line.startswith("dev risk key: lsk_"), line
        key = line.split(": ", 1)[1].strip()
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health.json() == {"status": "ok", "database": "ok"}
        loan = httpx.get(f"{base}/v1/loans/1", headers={"Authorization": f"Bearer {key}"})
        assert loan.status_code == 404  # authenticated as risk; the fresh database has no loans
        assert httpx.get(f"{base}/v1/loans/1").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_refuses_an_uninitialised_database_without_dev(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"LENDSTACK_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}
    result = runner.invoke(_cli(), ["serve"], env=env)
    assert result.exit_code != 0
    assert "not initialised" in str(result.exception)
