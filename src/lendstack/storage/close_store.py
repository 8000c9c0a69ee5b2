"""The close of business's store: runs a day's steps (`storage.cob`) in one transaction and
records them in `cob_steps`, with the faster forms a run of the simulator may ask for."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, Engine, func, insert, select

from lendstack.servicing.cob import CobStep, Progress
from lendstack.storage.calendar import CLOSED_STEP, as_date, last_closed
from lendstack.storage.cob import SNAPSHOT_GROUPS, STEP_SQL, insert_snapshot
from lendstack.storage.mapping import to_day
from lendstack.storage.month_end import is_month_end
from lendstack.storage.repositories import now
from lendstack.storage.schema import cob_steps, loans
from lendstack.storage.snapshot import ReadAside


class SqlCloseStore:
    """The `CloseStore` port over a database: one transaction per step.

    Two faster forms of steps, for a caller that is the book's only writer and reads the
    book's raw balances only at month-ends (the simulator); the books, every loan read through
    `SqlLoans` and every close step's figures are those of the plain close, and each
    month-end leaves the tables exactly as it would:

    - `defer_accrual`: the accrual writes only the loans written since the last close, except
      on month-ends, when it writes every accruing loan (`accrue`);
    - `carry_exposures`: each funder's exposure balance is carried from the last close by the
      flows written since, not summed from every open loan's positions, and checked against
      that sum on month-ends (`fund`);
    - `snapshot_aside` (a SQLite file): the day closes without its snapshot, which is read
      from the moment the close committed on a thread of its own (`ReadAside`) while the
      caller goes on, and written, with its step's row, first thing in the next close, or by
      `flush`. Use the store as a context manager, which finishes it. The day is marked
      closed with its other steps, so loans read in between carry its accrual. A run that
      stops between the two writes has the day without its snapshot.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        defer_accrual: bool = False,
        carry_exposures: bool = False,
        snapshot_aside: bool = False,
    ) -> None:
        self.engine = engine
        self.defer_accrual = defer_accrual
        self.carry_exposures = carry_exposures
        url = engine.url.render_as_string(hide_password=False)
        self._aside = ReadAside(url) if snapshot_aside else None
        self._aside_day: date | None = None
        """The day whose snapshot is being read aside, not yet written."""

    def __enter__(self) -> SqlCloseStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.finish()
        elif self._aside is not None:
            self._aside.close()

    def flush(self) -> None:
        """Write the snapshot being read aside, if any, in a transaction of its own."""
        if self._aside_day is not None:
            with self.engine.begin() as conn:
                self._write_aside(conn)

    def finish(self) -> None:
        """`flush`, then let go of the reader."""
        if self._aside is None:
            return
        try:
            self.flush()
        finally:
            self._aside.close()

    def last_closed(self) -> date | None:
        with self.engine.connect() as conn:
            return last_closed(conn)

    def first_activity(self) -> date | None:
        with self.engine.connect() as conn:
            return as_date(conn.execute(select(func.min(loans.c.disbursement_date))).scalar())

    def close(
        self, day: date, steps: tuple[CobStep, ...], progress: Progress | None = None
    ) -> tuple[tuple[CobStep, int], ...]:
        done: list[tuple[CobStep, int]] = []
        options = self.step_options(day)
        aside = self._aside is not None and CobStep.SNAPSHOT in steps
        with self.engine.begin() as conn:
            self._write_aside(conn)
            for step in steps:
                if progress:
                    progress(day, step)
                if aside and step is CobStep.SNAPSHOT:
                    continue
                done.append((step, STEP_SQL[step](conn, day, **options.get(step, {}))))
            _record_steps(conn, day, [(s.value, n) for s, n in done] + [(CLOSED_STEP, 0)])
        if aside and self._aside is not None:
            self._aside.start(f"SELECT {SNAPSHOT_GROUPS}", {"d": to_day(day)})
            self._aside_day = day
        return tuple(done)

    def _write_aside(self, conn: Connection) -> None:
        """The snapshot read aside for the last closed day, and its step's row."""
        if self._aside is None or self._aside_day is None:
            return
        day, self._aside_day = self._aside_day, None
        written = insert_snapshot(conn, day, self._aside.take())
        _record_steps(conn, day, [(CobStep.SNAPSHOT.value, written)])

    def step_options(self, day: date) -> dict[CobStep, dict[str, bool]]:
        """The keyword arguments of the steps with a faster form (the class's docstring)."""
        return {
            CobStep.ACCRUAL: {"deferred": self.defer_accrual and not is_month_end(day)},
            CobStep.FUNDING: {"carried": self.carry_exposures},
        }


def _record_steps(conn: Connection, day: date, names: list[tuple[str, int]]) -> None:
    records = [
        {"business_date": day, "step": name, "rows": n, "completed_at": now()} for name, n in names
    ]
    conn.execute(insert(cob_steps), records)
