"""The close of business's store: runs a day's steps (`storage.cob`) in one transaction and
records them in `cob_steps`, with the faster forms a run of the simulator may ask for."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from lendstack.servicing.cob import CobStep, Progress
from lendstack.storage.calendar import CLOSED_STEP, as_date, last_closed
from lendstack.storage.cob import (
    ACCRUAL_SUMS,
    SNAPSHOT_GROUPS,
    STEP_SQL,
    CarriedAccrual,
    by_accrual,
    insert_snapshot,
)
from lendstack.storage.mapping import to_day
from lendstack.storage.month_end import is_month_end
from lendstack.storage.repositories import now
from lendstack.storage.schema import cob_steps, loans
from lendstack.storage.snapshot import ReadAside


class SqlCloseStore:
    """The `CloseStore` port over a database: one transaction per business date (reading
    aside, below, its snapshot in the next).

    Three faster forms of steps, for a caller that is the book's only writer and reads the
    book's raw balances only at month-ends (the simulator); the books, every loan read through
    `SqlLoans` and every close step's figures are those of the plain close, and each
    month-end leaves the tables exactly as it would:

    - `defer_accrual`: the accrual writes only the loans written since the last close, except
      on month-ends, when it writes every accruing loan (`accrue`);
    - `carry_exposures`: each funder's exposure balance is carried from the last close by the
      flows written since, not summed from every open loan's positions, and checked against
      that sum on month-ends (`fund`);
    - `read_aside` (a SQLite file): once a day's close has committed, the two scans of every
      active loan left to do, the day's snapshot and the next day's accrual sums, are read
      from that moment on a thread of their own (`ReadAside`) while the caller books and
      posts the next day. The next close writes the snapshot, with its step's row, first,
      and brings the accrual sums from that moment to its own (`CarriedAccrual`: the rows
      written since); a close that sums the book anyway (a month-end's) checks them. The
      reader is let go before each commit, so checkpoints can restart the log. `flush`
      writes a snapshot still pending; use the store as a context manager, which does. The
      day is marked closed with its other steps, so loans read in between carry its
      accrual; a run that stops between the two writes has the day without its snapshot (a
      close that fails keeps it for the next close or `flush` to write).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        defer_accrual: bool = False,
        carry_exposures: bool = False,
        read_aside: bool = False,
    ) -> None:
        self.engine = engine
        self.defer_accrual = defer_accrual
        self.carry_exposures = carry_exposures
        url = engine.url.render_as_string(hide_password=False)
        self._aside = ReadAside(url) if read_aside else None
        self._aside_day: date | None = None
        """The day whose close the pending read aside began at."""
        self._taken: tuple[date, list[tuple[Any, ...]]] | None = None
        """A snapshot taken from the reads aside and not yet committed: a close that fails
        after taking it leaves it here for the next close (or `flush`) to write."""

    def __enter__(self) -> SqlCloseStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.finish()
        else:
            self._stop_aside()

    def flush(self) -> None:
        """Write the snapshot being read aside, if any, in a transaction of its own."""
        if self._aside is None or (self._aside_day is None and self._taken is None):
            return
        try:
            with self.engine.begin() as conn:
                self._write_snapshot(conn)
            self._taken = None
        finally:
            self._let_go()

    def finish(self) -> None:
        """`flush`, then let go of the reader: the store closes days the plain way after."""
        try:
            self.flush()
        finally:
            self._stop_aside()

    def last_closed(self) -> date | None:
        with self.engine.connect() as conn:
            return last_closed(conn)

    def first_activity(self) -> date | None:
        with self.engine.connect() as conn:
            return as_date(conn.execute(select(func.min(loans.c.disbursement_date))).scalar())

    def close(
        self, day: date, steps: tuple[CobStep, ...], progress: Progress | None = None
    ) -> tuple[tuple[CobStep, int], ...]:
        """Run `steps` and mark `day` closed in one transaction; reading aside, the snapshot
        is left out (and out of the steps returned), to be written by the next transaction."""
        done: list[tuple[CobStep, int]] = []
        aside = self._aside is not None and CobStep.SNAPSHOT in steps
        try:
            with self.engine.begin() as conn:
                options = self.step_options(day, self._write_snapshot(conn))
                for step in steps:
                    if progress:
                        progress(day, step)
                    if aside and step is CobStep.SNAPSHOT:
                        continue
                    done.append((step, STEP_SQL[step](conn, day, **options.get(step, {}))))
                self._let_go()  # before the commit, so its checkpoint may restart the log
                _record_steps(conn, day, [(s.value, n) for s, n in done] + [(CLOSED_STEP, 0)])
            self._taken = None
        finally:
            self._let_go()
        if aside and self._aside is not None:
            self._aside.start(_aside_queries(day))
            self._aside_day = day
        return tuple(done)

    def _write_snapshot(self, conn: Connection) -> CarriedAccrual | None:
        """Write the snapshot read aside since the last close, with its step's row; return
        the accrual sums read with it, for the day after it (the reader stays pinned)."""
        if self._aside is None:
            return None
        carried = None
        if self._aside_day is not None:
            day, self._aside_day = self._aside_day, None
            snapshot, sums = self._aside.take()
            self._taken = (day, snapshot)
            carried = CarriedAccrual(
                day=to_day(day) + 1, sums=by_accrual(sums), read_then=self._aside.reader.rows
            )
        if self._taken is not None:
            day, snapshot = self._taken
            written = insert_snapshot(conn, day, snapshot)
            _record_steps(conn, day, [(CobStep.SNAPSHOT.value, written)])
        return carried

    def _let_go(self) -> None:
        """Unpin the reader once its reads are taken: a pinned reader keeps checkpoints from
        restarting the write-ahead log, which then grows with every commit."""
        if self._aside is not None and not self._aside.pending and self._aside.reader.pinned:
            self._aside.release()

    def _stop_aside(self) -> None:
        if self._aside is not None:
            self._aside.close()
            self._aside = None

    def step_options(
        self, day: date, carried: CarriedAccrual | None = None
    ) -> dict[CobStep, dict[str, Any]]:
        """The keyword arguments of the steps with a faster form (the class's docstring)."""
        accrual: dict[str, Any] = {"deferred": self.defer_accrual and not is_month_end(day)}
        if carried is not None:
            accrual["carried"] = carried
        return {
            CobStep.ACCRUAL: accrual,
            CobStep.FUNDING: {"carried": self.carry_exposures},
        }


def _aside_queries(day: date) -> list[tuple[str, dict[str, Any]]]:
    """What a close leaves to read aside: its snapshot and the next close's accrual sums."""
    d = to_day(day)
    return [
        (f"SELECT {SNAPSHOT_GROUPS}", {"d": d}),
        (ACCRUAL_SUMS, {"d": d + 1}),
    ]


def _record_steps(conn: Connection, day: date, names: list[tuple[str, int]]) -> None:
    records = [
        {"business_date": day, "step": name, "rows": n, "completed_at": now()} for name, n in names
    ]
    conn.execute(insert(cob_steps), records)
