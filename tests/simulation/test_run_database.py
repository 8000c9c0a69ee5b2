"""The run's database settings (`runner.scratch_engine`) stay the run's: a service engine
keeps SQLite's checkpoint interval and full fsync."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, event, text

from lendstack.simulation.runner import RUN_CACHED_STATEMENTS, RUN_CHECKPOINT_PAGES, scratch_engine
from lendstack.storage.db import make_engine


def _pragmas(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        pages = conn.execute(text("PRAGMA wal_autocheckpoint")).scalar()
        sync = conn.execute(text("PRAGMA synchronous")).scalar()
    engine.dispose()
    return int(pages or 0), int(sync or 0)


def test_the_run_checkpoints_less_often_and_skips_fsync(tmp_path: Path) -> None:
    assert _pragmas(scratch_engine(f"sqlite:///{tmp_path / 'run.db'}")) == (
        RUN_CHECKPOINT_PAGES,
        0,
    )


def test_the_service_keeps_the_defaults(tmp_path: Path) -> None:
    assert _pragmas(make_engine(f"sqlite:///{tmp_path / 'service.db'}")) == (1000, 2)


def _connect_args(engine: Engine) -> dict[str, object]:
    seen: dict[str, object] = {}

    @event.listens_for(engine, "do_connect")
    def _seen(
        _dialect: object, _record: object, _cargs: object, cparams: dict[str, object]
    ) -> None:
        seen.update(cparams)

    with engine.connect():
        pass
    engine.dispose()
    return seen


def test_the_run_keeps_more_prepared_statements_than_the_driver(tmp_path: Path) -> None:
    run = _connect_args(scratch_engine(f"sqlite:///{tmp_path / 'run.db'}"))
    service = _connect_args(make_engine(f"sqlite:///{tmp_path / 'service.db'}"))
    assert run.get("cached_statements") == RUN_CACHED_STATEMENTS > 128
    assert "cached_statements" not in service
