"""The run's database settings (`runner.scratch_engine`) stay the run's: a service engine
keeps SQLite's checkpoint interval and full fsync."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from lendstack.simulation.runner import RUN_CHECKPOINT_PAGES, scratch_engine
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
