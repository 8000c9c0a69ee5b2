"""The month loop: the whole platform, under one scenario, one month at a time.

Each month:
1. **apply**: borrowers apply (`behaviour.applicants`: demand answers last month's approval
   rate and price), on a day of the month drawn from the seed, showing this month's income;
2. **decide**: the real decision engine decides them in batches (`underwriting.batch`:
   rule pack, credit model, pricing, limits, co-lending plan, hash-chained log), all against
   the book as the month begins: first, or, with `workers=2`, in a second process while this
   one services the month (`simulation.deciding`; the same results);
3. **service**: day by day, granted offers dated that day are booked as one batch
   (`book_bookables`, each funding plan re-checked), borrowers pay (`repayments`, one batch),
   and the real close of business runs (accrual, billing, penalties, ageing,
   classification, charge-off, month-end panel);
4. **month-end**: measures, ECL (posted), early-warning alerts (`metrics`); a clampdown
   scenario may tighten the rules from next month.

`MonthEndHook`s run after the measures: the NPL sale (`simulation.npl.NplSale`, each
quarter-end) is one; collections would be another (see docs/simulation.md).
"""

from __future__ import annotations

import gc
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, event

from lendstack.core.dates import add_months, last_day_of_month
from lendstack.core.errors import Conflict, ValidationError
from lendstack.funding import is_no_capacity
from lendstack.servicing import LoanState, ProductCatalog, close_day
from lendstack.simulation import behaviour
from lendstack.simulation.deciding import SideProcess, decide_first
from lendstack.simulation.funds import FundsFeed
from lendstack.simulation.metrics import (
    MonthEndReads,
    MonthMetrics,
    measure_month,
    scaled_thresholds,
)
from lendstack.simulation.platform import (
    CapRule,
    ServiceSpec,
    build_service,
    derived_pack,
    run_settings,
    worker_service,
)
from lendstack.simulation.repayments import Repayments
from lendstack.simulation.scenario import PolicyOverride, Scenario
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.decisions import prepare_entry
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.underwriting.batch import BatchJob, RowResult
from lendstack.underwriting.decision import GRANTED
from lendstack.underwriting.origination import Bookable, book_bookables, bookable
from lendstack.underwriting.population import Population, PopulationConfig, generate_population
from lendstack.underwriting.rules import default_pack

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is 'month N/M: <stage>'."""


@dataclass(frozen=True, slots=True)
class RunConfig:
    borrowers: int = 2_000
    months: int = 6
    seed: int = 7
    start: date = date(2025, 10, 1)
    workers: int = 1
    """1: each month is decided in the run's process before it is serviced; 2: in a second
    process while the first services it (`simulation.deciding`: the same results, faster)."""
    npl_sale: bool = True
    """Sell the eligible bad loans at each quarter-end (`simulation.npl.NplSale`)."""
    retrain: bool = False
    """Retrain the credit model on matured loans at each month-end (`simulation.retrain`)."""

    def __post_init__(self) -> None:
        if not 10 <= self.borrowers <= 5_000_000:
            raise ValidationError("must be 10..5,000,000", field="borrowers")
        if not 1 <= self.months <= 120:
            raise ValidationError("must be 1..120", field="months")
        if self.start.day != 1:
            raise ValidationError("must be the first day of a month", field="start")
        if self.workers not in (1, 2):
            raise ValidationError("must be 1 or 2", field="workers")


class MonthEndHook(Protocol):
    """Extension point for collections and NPL sale: runs after each month-end's measures."""

    def __call__(self, engine: Engine, month_end: date, metrics: MonthMetrics) -> None: ...


@dataclass
class Tables:
    """Row lists for the Parquet outputs (applications and decisions; the rest come from SQL)."""

    applications: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResult:
    scenario: Scenario
    config: RunConfig
    out: Path
    months: list[MonthMetrics]
    tables: Tables
    engine: Engine
    population: Population
    borrower_of: dict[int, int]
    """loan id → borrower index in the population."""
    unbooked: Counter[str]
    """Granted offers that were not booked, by reason."""


def _noop(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class _Run:
    scenario: Scenario
    cfg: RunConfig
    out: Path
    progress: Progress
    hooks: Sequence[MonthEndHook]
    engine: Engine = field(init=False)
    spec: ServiceSpec = field(init=False)
    tables: Tables = field(default_factory=Tables)
    months: list[MonthMetrics] = field(default_factory=list)
    clamped_from: int | None = None
    reads: MonthEndReads = field(default_factory=MonthEndReads)

    def setup(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        settings = run_settings(self.out)
        self.engine = scratch_engine(settings.database_url)
        migrate(self.engine)
        SqlFunding(self.engine).import_builtin()
        self.spec = ServiceSpec(settings, self.scenario.name, self._pack(()), self.scenario.policy)
        self.catalog = ProductCatalog(settings.products_dir)
        self._service()
        # After the service: the side process opens the database and the PII key it made.
        self.side = SideProcess(self.spec) if self.cfg.workers == 2 else None
        cfg = self.cfg
        self.population = generate_population(
            PopulationConfig(seed=cfg.seed, n=cfg.borrowers, start=cfg.start, months=cfg.months)
        )
        self.rendered = list(self.population.applications())
        cols = self.population.columns
        streams = np.random.SeedSequence([cfg.seed, 8_008]).spawn(2)
        risk = behaviour.BorrowerRisk(
            self.population.outcomes.latent_pd,
            self.population.outcomes.burden,
            np.asarray(cols["city_tier"]),
            behaviour.diverted(np.random.default_rng(streams[0]), self.population.speculation),
        )
        self.repay = Repayments(self.engine, self.scenario, risk, cfg.seed)
        self.funds = FundsFeed(self.engine, cfg.seed)
        self.thresholds = scaled_thresholds(cfg.borrowers)
        self.active: dict[int, int] = {}  # loan id -> borrower, loans not yet closed
        self.unbooked: Counter[str] = Counter()

    def _pack(self, extra: tuple[CapRule, ...]) -> Path | None:
        """The derived pack file for the scenario's caps (+ a clampdown), or None."""
        caps = (
            tuple(
                CapRule(add_months(self.cfg.start, c.from_month - 1), c.apr_max, c.amount_max)
                for c in self.scenario.caps
            )
            + extra
        )
        if not caps:
            return None
        path = self.out / f"rule-pack-{self.scenario.name}-{len(caps)}.toml"
        path.write_text(derived_pack(default_pack(), self.scenario.name, caps), encoding="utf-8")
        return path

    def _service(self) -> None:
        self.service = build_service(self.spec, self.engine)
        factory = partial(worker_service, self.spec)
        self.job = BatchJob(self.service, prepare_entry, factory, bookable=True)

    def run(self) -> None:
        try:
            with collected_monthly() as month_end:
                for month in range(1, self.cfg.months + 1):
                    self.month(month)
                    month_end()
        finally:
            if self.side is not None:
                self.side.close()

    # -- one month ---------------------------------------------------------------------------

    def month(self, month: int) -> None:
        first = add_months(self.cfg.start, month - 1)
        days = last_day_of_month(first.year, first.month)
        label = f"month {month}/{self.cfg.months} {first:%Y-%m}"
        apps = self._applications(month, first, days)
        self.progress(f"{label}: deciding", 0, len(apps))
        decisions = _MonthDecisions(
            apps, self._decisions(apps, label), partial(self._decided, month)
        )
        # The run reads the book's raw balances only at month-ends (measures, ECL, hooks),
        # so the close writes each loan's accrual then, not daily; and it is the book's only
        # writer (the side process decides, this one books), so the close carries each
        # funder's exposure by the day's flows, and reads the day's snapshot and the next
        # day's accrual sums on another thread while the next day is booked and paid
        # (`SqlCloseStore`); the store is finished (the last snapshot written) before the
        # month-end reads the book. The month-end's writers stay outside the store's block,
        # and each month's store starts from a full sum. The NPL sale marks the loans it
        # sells `accrual_dirty`, so a store carrying sums past it would take them off
        # (tests/collections/test_npl_sale.py); use of funds writes only a penalty rate,
        # which the accrual does not read.
        booked: list[dict[str, Any]] = []
        with SqlCloseStore(
            self.engine, defer_accrual=True, carry_exposures=True, read_aside=True
        ) as store:
            for n in range(days):
                day = first + timedelta(days=n)
                self.progress(f"{label}: servicing {day}", n, days)
                booked += self._book(decisions.granted_through(day))
                self.repay.post_day(day, month)
                close_day(store, day)
        decided = decisions.all()
        self.progress(f"{label}: month-end", days, days)
        month_end = first + timedelta(days=days - 1)
        flagged = self.funds.deliver()
        metrics = measure_month(
            self.engine, month, month_end, decided, booked,
            self.months, self.thresholds, flagged, self.reads,
        )  # fmt: skip
        self.months.append(metrics)
        for hook in self.hooks:
            hook(self.engine, month_end, metrics)
        self._maybe_clamp(month, metrics)

    def _applications(self, month: int, first: date, days: int) -> list[tuple[int, dict[str, Any]]]:
        rng = np.random.default_rng([self.cfg.seed, 1_000 + month])
        has_loan = np.zeros(self.cfg.borrowers, dtype=bool)
        if self.active:
            has_loan[list(set(self.active.values()))] = True
        last = self.months[-1] if self.months else None
        factor = behaviour.demand_factor(
            self.scenario,
            None if last is None or not last.applications else last.approval_rate,
            None if last is None else last.mean_apr,
        )
        who = behaviour.applicants(rng, has_loan, self.scenario, factor)
        offsets = rng.integers(0, days, len(who))
        tiers = self.population.columns["city_tier"]
        rows = []
        for borrower, offset in sorted(
            zip(who.tolist(), offsets.tolist(), strict=True), key=lambda x: (x[1], x[0])
        ):
            day = first + timedelta(days=offset)
            income = self.scenario.income_factor(month, int(tiers[borrower]))
            rows.append((borrower, _application(self.rendered[borrower], day, income)))
        return rows

    def _decisions(self, apps: list[tuple[int, dict[str, Any]]], label: str) -> Iterator[RowResult]:
        """The month's results in application order: decided now, or started in the side
        process (which has pinned the month's moment when this returns)."""
        rows = [row for _, row in apps]
        if self.side is not None:
            return self.side.month(self.spec, self.job, rows)
        return decide_first(rows, self.job, partial(self.progress, f"{label}: deciding"))

    def _decided(
        self, month: int, borrower: int, row: dict[str, Any], result: RowResult
    ) -> tuple[dict[str, Any], Bookable | None]:
        """Tabulate one decision: its table row, and a granted one ready to book (made with
        the decision, `BatchJob.bookable`, else from its stored record)."""
        line = result.line
        entry = {
            "month": month, "borrower": borrower, "decision_id": line.get("decision_id"),
            "application_date": row["application_date"], "outcome": result.outcome,
            "pd": line.get("pd"), "offer_amount": line.get("offer_amount"),
            "apr_irr": line.get("apr_irr"), "reasons": ",".join(line.get("reasons", [])),
        }  # fmt: skip
        self.tables.decisions.append(entry)
        self.tables.applications.append(_app_row(month, borrower, row))
        if result.outcome not in GRANTED:
            return entry, None
        if result.bookable is not None:
            return entry, result.bookable
        stored = result.record or self.service.get(line["decision_id"]).record
        return entry, bookable(self.catalog, stored)

    def _book(self, granted: list[tuple[int, Bookable]]) -> list[dict[str, Any]]:
        """Book a day's granted decisions with their funding plans, in one transaction; an
        offer no partner can fund now, or that servicing refuses, is counted, never dropped
        silently."""
        if not granted:
            return []
        ready = [b for _, b in granted]
        try:
            results = self._originate(ready)
        except Conflict as exc:
            if not is_no_capacity(exc):
                raise
            # Refused under the funders' lock, which fails the whole batch: book one at a time.
            results = [result for b in ready for result in self._originate([b])]
        booked = []
        for (borrower, b), loan in zip(granted, results, strict=True):
            if is_no_capacity(loan):
                self.unbooked["no funding capacity"] += 1
            elif isinstance(loan, ValidationError):
                # An offer servicing refuses to book (e.g. a guarantee fee origination does
                # not yet pass on).
                self.unbooked[f"refused by servicing: {loan.field}"] += 1
            elif isinstance(loan, Exception):
                raise loan
            else:
                booked.append(self._booked(borrower, b, loan))
        return booked

    def _originate(self, ready: list[Bookable]) -> list[Any]:
        """`book_bookables` in one transaction, each plan re-checked by the desk and, with
        the ratio rules too, under the funders' lock."""
        desk = self.service.desk
        uow = SqlUnitOfWork(self.engine, plan_policy=desk.policy_on)  # type: ignore[union-attr]
        with desk.batch() as checks:  # type: ignore[union-attr]
            return book_bookables(uow, self.catalog, ready, checks)

    def _booked(self, borrower: int, b: Bookable, loan: LoanState) -> dict[str, Any]:
        self.repay.borrower_of[loan.id] = borrower
        self.active[loan.id] = borrower
        if self.repay.risk.diverted[borrower]:
            self.funds.disbursed(loan.id, loan.contract.disbursement_date, loan.contract.principal)
        # The offer's amount and APR as its record writes them (Decimal keeps the digits).
        return {"loan_id": loan.id, "amount": str(b.request.amount), "apr_irr": str(b.apr)}

    def _maybe_clamp(self, month: int, metrics: MonthMetrics) -> None:
        """The regulator's feedback: past the NPL threshold, tighten from next month."""
        self._forget_closed()
        clamp = self.scenario.clampdown
        if (
            clamp is None
            or self.clamped_from is not None
            or metrics.npl_ratio < clamp.npl_threshold
        ):
            return
        self.clamped_from = month + 1
        when = add_months(self.cfg.start, month)
        extra = (
            (CapRule(when, clamp.apr_max, clamp.amount_max),)
            if (clamp.apr_max or clamp.amount_max)
            else ()
        )
        policy = self.scenario.policy
        if clamp.max_pd is not None:  # the lender's easy policy ends with the clampdown
            policy = PolicyOverride(max_pd=clamp.max_pd)
        self.spec = replace(self.spec, pack_path=self._pack(extra), policy=policy)
        self._service()
        metrics.events.append(
            f"clampdown: NPL {metrics.npl_ratio:.2%} ≥ {clamp.npl_threshold:.2%}, tighter rules from month {month + 1}"
        )

    def _forget_closed(self) -> None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            closed = (
                conn.execute(text("SELECT id FROM loans WHERE status <> 'active'")).scalars().all()
            )
        for loan_id in closed:
            self.active.pop(int(loan_id), None)


@contextmanager
def collected_monthly() -> Iterator[Callable[[], None]]:
    """The cyclic garbage collector's policy for a run: once a month, and only the month's.

    A run keeps a large heap alive (population, book, decisions so far), and the collector's
    automatic full collections walk all of it each time, though almost none of it is garbage:
    measured as 13-22% of a run's CPU. Inside the block the automatic collector is off, and
    what is alive on entry (the run's setup) is frozen (`gc.freeze`: never walked again). The
    block yields `month_end`, to call once each month-end: it collects the month's garbage
    cycles, so none outlive the month they were made in, then freezes the survivors, so the
    next month-end walks only the next month's objects (a collection walking the whole run
    grew from 0.01 s to 0.10 s by month 12 at 5000 borrowers; frozen, each stays ~0.01 s).
    Reference counting frees everything else as it goes, frozen or not; a cycle among frozen
    objects that dies later waits for the block's end (measured: one object in a run).

    On exit, even on error, the collector is as it was: re-enabled if it was enabled, and
    what was frozen unfrozen (collectable again). If the caller had frozen objects already,
    nothing is frozen (unfreezing cannot tell theirs from ours): month-ends only collect.
    """
    was_enabled = gc.isenabled()
    freeze = gc.get_freeze_count() == 0
    gc.disable()

    def month_end() -> None:
        gc.collect()
        if freeze:
            gc.freeze()

    month_end()  # the setup's own garbage goes first, then the setup is frozen
    try:
        yield month_end
    finally:
        if freeze:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


RUN_CHECKPOINT_PAGES = 20_000
"""Pages the run's write-ahead log grows to before SQLite copies it into the database (its
default is 1,000). The close rewrites the pages of every accruing loan each day, about as
many as the default allows, so the default copied those same pages back every day; at
20,000 (80 MiB) a page rewritten daily is copied once per checkpoint. Measured at 10,000 x
24 in docs/benchmarks.md."""


RUN_CACHED_STATEMENTS = 512
"""Prepared statements the driver keeps per connection (Python's sqlite3 keeps 128). A run
cycles through more than 128 statement texts between one payment day and the next (booking,
payments, the close, month-end, and a new text for each day's batch size of an IN list), so
at 128 most of them were evicted before they came round again and prepared anew: over a
1,500 x 8 run about 1,550 prepares at 128, 470 at 256 or more (a least-recently-used cache
replayed over the run's statements); a payment batch's IN-list statement costs ~640k
instructions to prepare."""


def _run_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute(f"PRAGMA wal_autocheckpoint={RUN_CHECKPOINT_PAGES}")
    cursor.close()


def scratch_engine(url: str) -> Engine:
    """The run's engine: the usual SQLite settings, but no fsync at each commit and a longer
    log between checkpoints. A run's database is output, rebuilt by rerunning; durability
    against power loss buys nothing and costs most of a small run's time (one fsync per
    payment). The service's engines keep the defaults (`storage.db`)."""
    options: dict[str, Any] = {"pool_use_lifo": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"cached_statements": RUN_CACHED_STATEMENTS}
    engine = make_engine(url, **options)
    event.listen(engine, "connect", _run_pragmas)
    return engine


@dataclass
class _MonthDecisions:
    """A month's decisions, taken in application order as the days reach them (the
    applications are sorted by date)."""

    apps: list[tuple[int, dict[str, Any]]]
    results: Iterator[RowResult]
    tabulate: Callable[[int, dict[str, Any], RowResult], tuple[dict[str, Any], Bookable | None]]
    """(borrower, row, result) → the decision's table row, and a granted one ready to book."""
    taken: int = 0
    decided: list[dict[str, Any]] = field(default_factory=list)

    def granted_through(self, day: date) -> list[tuple[int, Bookable]]:
        """The granted (borrower, decision ready to book) of every application dated up to
        `day` not yet taken."""
        granted = []
        while self.taken < len(self.apps) and self._dated(self.taken) <= day:
            borrower, row = self.apps[self.taken]
            result = next(self.results)
            if result.number != self.taken + 1:
                raise RuntimeError(f"decision {result.number} came for row {self.taken + 1}")
            self.taken += 1
            entry, ready = self.tabulate(borrower, row, result)
            self.decided.append(entry)
            if ready is not None:
                granted.append((borrower, ready))
        return granted

    def all(self) -> list[dict[str, Any]]:
        """Every decision's table row, the rest taken first (and the results run to their end,
        so a side process's month is finished)."""
        self.granted_through(date.max)
        for extra in self.results:
            raise RuntimeError(f"decision {extra.number} came for no application")
        return self.decided

    def _dated(self, i: int) -> date:
        return date.fromisoformat(self.apps[i][1]["application_date"])


def _application(raw: dict[str, Any], day: date, income_factor: float) -> dict[str, Any]:
    """The borrower's application dated `day`, showing this month's income."""
    applicant = raw["applicant"]
    if income_factor != 1.0:
        yuan = float(applicant["monthly_income"]) * income_factor
        applicant = {**applicant, "monthly_income": f"{round(yuan / 100) * 100:.2f}"}
    return {**raw, "applicant": applicant, "application_date": day.isoformat()}


def _app_row(month: int, borrower: int, row: dict[str, Any]) -> dict[str, Any]:
    a, loan = row["applicant"], row["loan"]
    return {
        "month": month, "borrower": borrower, "application_date": row["application_date"],
        "channel": row["channel"], "lender_type": row["lender_type"], "province": a["province"],
        "city": a["city"], "monthly_income": a["monthly_income"], "employment": a["employment_type"],
        "is_student": a["is_student"], "amount": loan["amount"], "term_months": loan["term_months"],
        "purpose": loan["purpose"],
    }  # fmt: skip


def run_scenario(
    scenario: Scenario,
    config: RunConfig,
    out: Path,
    progress: Progress | None = None,
    hooks: Sequence[MonthEndHook] = (),
) -> RunResult:
    """Run one scenario into `out` (emptied first); the caller writes the outputs."""
    if config.npl_sale:
        from lendstack.simulation.npl import NplSale

        run_end = add_months(config.start, config.months) - timedelta(days=1)
        hooks = (*hooks, NplSale(run_end))
    run = _Run(scenario, config, out, progress or _noop, hooks)
    run.setup()
    from lendstack.simulation.collections_loop import CollectionsLoop

    run.hooks = (*run.hooks, CollectionsLoop(run.repay, config.seed))
    if config.retrain:
        from lendstack.simulation.retrain import Retrainer

        run.hooks = (*run.hooks, Retrainer(run))
    run.run()
    return RunResult(
        scenario, config, out, run.months, run.tables, run.engine, run.population,
        run.repay.borrower_of, run.unbooked,
    )  # fmt: skip
