"""Packaging NPLs in SQL: select the eligible loans, store the portfolio, build its loan tape.

Column-wise throughout, because a package runs to 500,000 loans: one statement reads every
candidate (class and status already filtered, with its sold and open-portfolio marks and the
schedule facts a charged-off claim needs) into numpy columns; the pure `screen` decides; the
portfolio's loans go in with one driver-level bulk insert (COPY on PostgreSQL); the tape is
assembled from the same columns plus one keyed read per extra source (payments, schedule,
funder shares, profiles, the collections contact log when it exists, and the decisions'
sealed resident IDs for the age bands when the PII key is at hand).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, inspect, select

from lendstack.collections.npl_eligibility import Criteria, screen
from lendstack.collections.npl_recovery import months_between
from lendstack.collections.npl_tape import age_band, claims
from lendstack.core.errors import Conflict, ValidationError
from lendstack.storage.batches import inserted_ids
from lendstack.storage.npl import NPL_DPD, StoredPortfolio, facts_date, fetch_raw, get_portfolio
from lendstack.storage.repositories import now
from lendstack.storage.schema import npl_portfolios
from lendstack.underwriting.identity import age_on
from lendstack.underwriting.pii import PiiVault

CONTACT_TABLE = "collection_contacts"
"""The collections contact log, when the collections capability has created it."""

I8, OBJ, DAY = np.int64, object, "datetime64[D]"
T = TypeVar("T")


def _in(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "''"


def _candidates_sql(criteria: Criteria) -> str:
    statuses, classes = _in(criteria.statuses), _in(criteria.classes())
    return (
        "SELECT l.id, l.product_id, l.status, l.risk_class, l.dpd,"
        " CASE WHEN s.loan_id IS NULL THEN 0 ELSE 1 END, CASE WHEN o.loan_id IS NULL THEN 0"
        " ELSE 1 END, l.bal_principal, l.bal_interest, l.bal_fee, l.bal_penalty,"
        " l.charged_off_fen, l.recovered_fen, l.closed_on, l.disbursement_date,"
        " COALESCE(i.principal, 0), COALESCE(i.fee, 0) FROM loans l"
        " LEFT JOIN npl_sold_loans s ON s.loan_id = l.id"
        " LEFT JOIN (SELECT DISTINCT pl.loan_id FROM npl_portfolio_loans pl JOIN npl_portfolios p"
        "   ON p.id = pl.portfolio_id WHERE p.status = 'open') o ON o.loan_id = l.id"
        " LEFT JOIN (SELECT x.loan_id, SUM(x.principal_fen - x.paid_principal_fen) AS principal,"
        "   SUM(CASE WHEN x.billed THEN x.fee_fen - x.paid_fee_fen ELSE 0 END) AS fee"
        "   FROM installments x JOIN loans y ON y.id = x.loan_id"
        "   WHERE x.version = y.schedule_version AND y.status <> 'active'"
        f"  AND y.status IN ({statuses}) AND y.risk_class IN ({classes}) GROUP BY x.loan_id) i"
        f" ON i.loan_id = l.id WHERE l.status IN ({statuses}) AND l.risk_class IN ({classes})"
        " ORDER BY l.id"
    )


_TYPES = (I8, OBJ, OBJ, OBJ, I8, bool, bool, I8, I8, I8, I8, I8, I8, OBJ, OBJ, I8, I8)
_NAMES = ("id", "product", "status", "risk_class", "dpd", "sold", "in_open", "bal_p", "bal_i",
          "bal_f", "bal_pen", "charged", "recovered", "closed_on", "disbursed", "unpaid_p",
          "unpaid_fee")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Selection:
    eligible: int
    excluded: dict[str, int]
    """Each exclusion reason and how many loans it kept out."""


def _dates(values: NDArray[Any]) -> NDArray[np.datetime64]:
    """DATE values (ISO text on SQLite, dates on PostgreSQL; None) as datetime64[D]."""
    try:
        return np.array(values.tolist(), dtype=DAY)
    except ValueError:
        return np.array([None if v is None else str(v)[:10] for v in values], dtype=DAY)


def read_candidates(conn: Connection, criteria: Criteria) -> dict[str, NDArray[Any]]:
    cols = fetch_raw(conn, _candidates_sql(criteria), {}, _TYPES)
    out = dict(zip(_NAMES, cols, strict=True))
    out["closed_on"], out["disbursed"] = _dates(out["closed_on"]), _dates(out["disbursed"])
    return out


def facts(cand: dict[str, NDArray[Any]], closed: date, day: date) -> dict[str, NDArray[Any]]:
    """Claims, DPD on the package date and months since default, for the selected rows."""
    active = cand["status"] == "active"
    balances = (cand["bal_p"], cand["bal_i"], cand["bal_f"], cand["bal_pen"])
    p, i, f, pen = claims(active, balances, cand["charged"], cand["recovered"],
                          (cand["unpaid_p"], cand["unpaid_fee"]))  # fmt: skip
    on = np.datetime64(day, "D")
    since_close = np.where(np.isnat(cand["closed_on"]), on, cand["closed_on"])
    moved = np.where(active, (on - np.datetime64(closed, "D")).astype(I8),
                     (on - since_close).astype(I8))  # fmt: skip
    dpd = cand["dpd"] + np.where(cand["dpd"] > 0, moved, 0)
    late = np.maximum(dpd - NPL_DPD, 0)
    return {**cand, "p": p, "i": i, "f": f, "pen": pen, "dpd_on": dpd,
            "default": on - late.astype("timedelta64[D]"), "months": months_between(late)}  # fmt: skip


def _bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    """COPY on PostgreSQL, the driver's executemany on SQLite: no per-row Python in between."""
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def create_portfolio(
    conn: Connection, name: str, day: date, criteria: Criteria
) -> tuple[StoredPortfolio, Selection, dict[str, NDArray[Any]]]:
    """Select the eligible loans into a new named portfolio (in the caller's transaction)."""
    if not name or len(name) > 80:
        raise ValidationError("a portfolio name is 1-80 characters", field="name")
    if conn.execute(select(npl_portfolios.c.id).where(npl_portfolios.c.name == name)).first():
        raise Conflict(f"an NPL portfolio named {name!r} already exists", field="name")
    closed = facts_date(conn, day)
    if day > criteria.pilot_end:
        raise ValidationError(
            f"{day} is after the pilot's end ({criteria.pilot_end})", field="date"
        )
    cand = read_candidates(conn, criteria)
    keep, excluded = screen(cand["product"], cand["status"], cand["risk_class"], cand["dpd"],
                            cand["sold"], cand["in_open"], criteria, day)  # fmt: skip
    if not keep.any():
        why = "; ".join(f"{n} {r}" for r, n in sorted(excluded.items()))
        raise ValidationError(
            f"no loan is eligible on {day}; nothing packaged (excluded: {why or 'none found'})",
            field="criteria",
        )
    chosen = facts({k: v[keep] for k, v in cand.items()}, closed, day)
    _store(conn, name, day, criteria, chosen)
    return get_portfolio(conn, name), Selection(int(keep.sum()), excluded), chosen


def _store(conn: Connection, name: str, day: date, criteria: Criteria, c: dict[str, Any]) -> int:
    totals = {k: int(c[a].sum()) for k, a in (("principal_fen", "p"), ("interest_fen", "i"),
                                              ("fee_fen", "f"), ("penalty_fen", "pen"))}  # fmt: skip
    head = {"name": name, "business_date": day, "status": "open", "loans": len(c["id"]),
            "criteria_json": criteria.canonical(), "created_at": now(), **totals}  # fmt: skip
    pid = inserted_ids(conn, npl_portfolios, [head])[0]
    columns = ("portfolio_id", "loan_id", "status", "principal_fen", "interest_fen", "fee_fen",
               "penalty_fen", "months_since_default")  # fmt: skip
    data = zip(c["id"].tolist(), c["status"].tolist(), c["p"].tolist(), c["i"].tolist(),
               c["f"].tolist(), c["pen"].tolist(), c["months"].tolist(), strict=True)  # fmt: skip
    _bulk_insert(conn, "npl_portfolio_loans", columns, [(pid, *row) for row in data])
    return pid


# --- the tape ----------------------------------------------------------------------------------


def _keyed(conn: Connection, sql: str, pid: int, types: tuple[Any, ...]) -> list[NDArray[Any]]:
    return fetch_raw(conn, sql, {"p": pid}, types)


def _place(ids: NDArray[np.int64], keys: NDArray[np.int64], values: NDArray[Any],
           fill: Any, dtype: Any) -> NDArray[Any]:  # fmt: skip
    """`values` keyed by loan id, laid out in `ids` order, `fill` where a loan has none."""
    out = np.full(len(ids), fill, dtype=dtype)
    if len(keys):
        out[np.searchsorted(ids, keys)] = values
    return out


_PAYMENTS = (
    "SELECT y.loan_id, COUNT(*), MAX(y.value_date) FROM payments y JOIN npl_portfolio_loans pl"
    " ON pl.loan_id = y.loan_id AND pl.portfolio_id = :p WHERE y.status = 'posted'"
    " GROUP BY y.loan_id ORDER BY y.loan_id"
)
_SCHEDULE_PAID = (
    "SELECT x.loan_id, COUNT(*), MAX(x.due_date) FROM installments x JOIN loans l"
    " ON l.id = x.loan_id JOIN npl_portfolio_loans pl ON pl.loan_id = l.id"
    " AND pl.portfolio_id = :p WHERE x.version = l.schedule_version"
    " AND x.paid_principal_fen + x.paid_interest_fen + x.paid_fee_fen > 0"
    " GROUP BY x.loan_id ORDER BY x.loan_id"
)
_PROFILES = (
    "SELECT lp.loan_id, lp.province FROM loan_profiles lp JOIN npl_portfolio_loans pl"
    " ON pl.loan_id = lp.loan_id AND pl.portfolio_id = :p ORDER BY lp.loan_id"
)
_DECIDED = (
    "SELECT lp.loan_id, lp.decision_id, d.record_json FROM loan_profiles lp"
    " JOIN npl_portfolio_loans pl ON pl.loan_id = lp.loan_id AND pl.portfolio_id = :p"
    " JOIN decision_log d ON d.decision_id = lp.decision_id AND d.kind = 'decision'"
    " ORDER BY lp.loan_id"
)
_SHARES = (
    "SELECT f.loan_id, f.funder_id, f.share_units FROM funder_positions f"
    " JOIN npl_portfolio_loans pl ON pl.loan_id = f.loan_id AND pl.portfolio_id = :p"
    " WHERE f.share_units > 0 ORDER BY f.loan_id, f.funder_id"
)


def _last_payment(conn: Connection, pid: int, ids: NDArray[np.int64]) -> tuple[Any, Any]:
    """Posted payments (count, last date); books without payment rows (bulk synthetic ones)
    fall back to the schedule: installments paid on, and the last one's due date."""
    count = np.zeros(len(ids), dtype=I8)
    last = np.full(len(ids), np.datetime64("NaT"), dtype=DAY)
    for sql in (_SCHEDULE_PAID, _PAYMENTS):  # payments, where present, win
        keys, n, when = _keyed(conn, sql, pid, (I8, I8, OBJ))
        if len(keys):
            at = np.searchsorted(ids, keys)
            count[at], last[at] = n, _dates(when)
    return count, last


def _shares(conn: Connection, pid: int, ids: NDArray[np.int64]) -> NDArray[Any]:
    keys, funders, units = _keyed(conn, _SHARES, pid, (I8, OBJ, I8))
    text_by: dict[int, list[str]] = defaultdict(list)
    for k, f, u in zip(keys.tolist(), funders.tolist(), units.tolist(), strict=True):
        text_by[k].append(f"{f}:{u / 10000:.4f}")
    out = np.full(len(ids), "platform:1.0000", dtype=object)
    if text_by:
        at = np.searchsorted(ids, np.array(list(text_by), dtype=I8))
        out[at] = [";".join(v) for v in text_by.values()]
    return out


def _age_bands(
    conn: Connection, pid: int, ids: NDArray[np.int64], on: date, vault: PiiVault | None
) -> NDArray[Any]:
    """Each borrower's age band on the package date, from the resident ID sealed in the
    decision the loan was booked from. Only the band leaves: the ID is opened in memory and
    never written. Missing (None) without the vault's key or for a loan booked without a
    decision; a key that does not open the IDs is an error (`pii_key`), not a gap."""
    bands = np.full(len(ids), None, dtype=object)
    if vault is None:
        return bands
    keys, decisions, records = _keyed(conn, _DECIDED, pid, (I8, OBJ, OBJ))
    unopened = 0
    for at, decision_id, record_json in zip(
        np.searchsorted(ids, keys).tolist(), decisions.tolist(), records.tolist(), strict=True
    ):
        application = json.loads(record_json).get("application", {})
        try:
            resident_id = vault.reveal_field(application, str(decision_id), "resident_id")
            bands[at] = None if resident_id is None else age_band(age_on(resident_id, on))
        except ValidationError:  # no message kept: it could carry the ID's birth date
            unopened += 1
    if unopened:
        raise ValidationError(
            f"the PII key does not open {unopened:,} of {len(keys):,} packaged loans' sealed "
            "resident IDs (a different key sealed them?); nothing was packaged",
            field="pii_key",
        )
    return bands


def _contacts(conn: Connection, pid: int, ids: NDArray[np.int64]) -> NDArray[Any]:
    if not inspect(conn).has_table(CONTACT_TABLE):
        return np.full(len(ids), None, dtype=object)
    keys, n = _keyed(
        conn,
        f"SELECT c.loan_id, COUNT(*) FROM {CONTACT_TABLE} c JOIN npl_portfolio_loans pl"
        " ON pl.loan_id = c.loan_id AND pl.portfolio_id = :p WHERE c.allowed = TRUE"
        " GROUP BY c.loan_id ORDER BY c.loan_id",
        pid,
        (I8, I8),
    )
    return _place(ids, keys, n, 0, object)


def tape(
    conn: Connection, portfolio: StoredPortfolio, c: dict[str, Any], vault: PiiVault | None = None
) -> dict[str, Any]:
    """The loan tape, column by column in `FIELDS` order (money in fen, dates datetime64);
    `vault` opens the borrowers' resident IDs for their age bands (`_age_bands`)."""
    pid, ids, on = portfolio.id, c["id"], np.datetime64(portfolio.business_date, "D")
    paid, last = _last_payment(conn, pid, ids)
    since = (on - last).astype("timedelta64[D]").astype(object)
    keys, provinces = _keyed(conn, _PROFILES, pid, (I8, OBJ))
    categories = {k: v.get("category") for k, v in portfolio.criteria.get("products", {}).items()}
    return {
        "loan_id": ids, "product_id": c["product"],
        "category": np.array([categories.get(p) for p in c["product"]], dtype=object),
        "status": c["status"], "principal": c["p"], "interest": c["i"], "fee": c["f"],
        "penalty": c["pen"], "claim": c["p"] + c["i"] + c["f"] + c["pen"],
        "recovered": c["recovered"], "dpd": c["dpd_on"], "risk_class": c["risk_class"],
        "default_date": c["default"], "months_since_default": c["months"],
        "charge_off_date": np.where(c["status"] == "active", np.datetime64("NaT"), c["closed_on"]),
        "disbursement_date": c["disbursed"],
        "days_since_last_payment": np.array([None if d is None else d.days for d in since],
                                            dtype=object),
        "payments": paid, "contact_attempts": _contacts(conn, pid, ids),
        "region": _place(ids, keys, provinces, None, object), "age_band":
        _age_bands(conn, pid, ids, portfolio.business_date, vault), "funder_shares": _shares(conn, pid, ids),
    }  # fmt: skip


def package_portfolio(
    engine: Engine,
    name: str,
    day: date,
    criteria: Criteria,
    export: Callable[[StoredPortfolio, Selection, dict[str, Any]], T],
    vault: PiiVault | None = None,
) -> T:
    """Package, build the tape and `export` it, in one transaction: if the tape is unsound or
    the files cannot be written, the portfolio is not kept either."""
    with engine.begin() as conn:
        portfolio, chosen, columns = create_portfolio(conn, name, day, criteria)
        return export(portfolio, chosen, tape(conn, portfolio, columns, vault))


__all__ = ["Selection", "create_portfolio", "package_portfolio", "read_candidates", "tape"]
