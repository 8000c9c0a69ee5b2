"""Helpers for the audit-log tests: a decision-log repository, a vault and a CLI runner."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import typer
from audit_testdata import AT, DAY, RESIDENT_ID, application
from sqlalchemy import Engine
from typer.testing import CliRunner

from lendstack.cli import decisions as decisions_cli
from lendstack.cli.context import AppContext
from lendstack.settings import Settings
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.underwriting.pii import PiiVault


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def vault(key: bytes) -> PiiVault:
    return PiiVault(key)


@pytest.fixture
def log(engine: Engine) -> SqlDecisionLog:
    return SqlDecisionLog(engine)


@pytest.fixture
def decide(log: SqlDecisionLog, vault: PiiVault) -> Callable[..., Any]:
    """Append one decision the way the decision service will: PII sealed before hashing."""

    def _decide(n: int, *, outcome: str = "APPROVE", key: str | None = None, **kw: Any) -> Any:
        decision_id = f"dec-{n:06d}"
        app = application()
        record = {"application": vault.protect(app, decision_id), "outcome": outcome, "n": n}
        return log.append(
            "decision",
            decision_id,
            kw.pop("channel", "app"),
            kw.pop("application_date", DAY),
            outcome,
            vault.borrower_key(RESIDENT_ID),
            kw.pop("offer_amount_fen", 500_000),
            key if key is not None else f"idem-{n}",
            "ab" * 32,
            record,
            AT,
            **kw,
        )

    return _decide


@pytest.fixture
def cli(database_url: str, key: bytes, engine: Engine) -> Iterator[Callable[..., Any]]:
    """Run `lendstack decisions ...` as the root command will once it registers the group."""
    settings = Settings(database_url=database_url, pii_key=base64.b64encode(key).decode())
    context = AppContext(settings)
    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = context

    root.add_typer(decisions_cli.app, name="decisions")
    runner = CliRunner()

    def _run(*args: str) -> Any:
        return runner.invoke(root, ["decisions", *args])

    yield _run
    if "engine" in context.__dict__:
        context.engine.dispose()
