"""Forbearance in IFRS 9 staging: a restructured loan still under observation is stage 2
(cause S2_FORBORNE) however current it is, and leaves it only with the observation period."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
from sqlalchemy import Engine, text

from cli_runner import Run
from lendstack.risk.staging import Cause, Stage, assign_stages
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.services import LoanRequest, book_loan
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.repositories import SqlUnitOfWork


def test_a_forborne_loan_is_stage_two_unless_it_is_stage_three() -> None:
    dpd = np.array([0, 0, 45, 120])
    forborne = np.array([False, True, True, True])
    pd = np.full(4, 0.02)
    staged = assign_stages(dpd, np.zeros(4, dtype=bool), pd, pd, forborne=forborne)
    assert staged.stage.tolist() == [1, 2, 2, 3]
    assert staged.labels(1) == ("S2_FORBORNE",)
    assert staged.labels(2) == ("S2_DPD", "S2_FORBORNE")
    assert staged.labels(3) == ("S3_DPD",)  # only the triggers of the stage it landed in
    assert Cause.S2_FORBORNE.stage is Stage.TWO
    assert Cause.S3_DEFAULT.stage is Stage.THREE
    assert Cause.S1.stage is Stage.ONE


def test_the_ecl_run_stages_a_restructured_loan_as_forborne(
    engine: Engine, catalog: ProductCatalog, cli: Run
) -> None:
    booked = date(2026, 1, 5)
    ids = [
        book_loan(
            SqlUnitOfWork(engine),
            catalog,
            LoanRequest("cash-loan-installment", Decimal("6000.00"), 12, Decimal("0.18"), booked),
        ).id
        for _ in range(2)
    ]
    close_through(SqlCloseStore(engine), date(2026, 3, 1))  # both about 24 days past due
    done = cli("collections", "restructure", str(ids[0]), "--date", "2026-03-02", "--term", "12")
    assert done.exit_code == 0, done.output
    close_through(SqlCloseStore(engine), date(2026, 3, 2))
    ecl = cli("risk", "ecl", "--date", "2026-03-02", "--format", "json")
    assert ecl.exit_code == 0, ecl.output
    assert ecl.json()["causes"]["S2_FORBORNE"] == 1
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT loan_id, stage, causes FROM ecl_run_loans ORDER BY loan_id")
        ).all()
    restructured, other = stored
    assert (restructured.loan_id, restructured.stage) == (ids[0], 2)
    assert restructured.causes & Cause.S2_FORBORNE
    assert not other.causes & Cause.S2_FORBORNE
