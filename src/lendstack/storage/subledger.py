"""Funder sub-ledgers in SQL: positions and flows kept in step with the loan, and their GL entry.

The split itself is the pure `lendstack.funding.subledger`; this module loads a loan's funder
holdings, stores the parts, and keeps `funder_positions` current. It runs inside the caller's
transaction: a payment's parts are written with the payment (`SqlPayments` calls `on_payment`),
so a loan's positions add up to its principal at every commit, not just after the close.

The general ledger gets the funders' side once a day, at close: one balanced entry per business
date from that day's flows, every line tagged with its funder. Between closes the sub-ledger
runs ahead of the GL by exactly the open date's flows, which is what `reconcile` allows for.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, text, update

from lendstack.core.errors import Conflict, NotFound
from lendstack.core.money import from_fen, to_fen
from lendstack.funding import guarantee_fee_per_period
from lendstack.funding.subledger import (
    DUE_SIGN,
    POSITION_SIGN,
    Flow,
    Holding,
    LoanSplit,
    Part,
    PartValues,
    after_transfer,
    apply_parts,
    capitalised_parts,
    charge_off_parts,
    guarantee_fee_part,
    open_parts,
    reversed_parts,
    share_units,
    transfer_parts,
)
from lendstack.servicing.domain.ledger import (
    Account,
    EventType,
    JournalEntry,
    Side,
    entry_or_none,
    leg,
)
from lendstack.storage.batches import chunks, execute_rows, insert_rows
from lendstack.storage.calendar import last_closed
from lendstack.storage.mapping import cached_decimal
from lendstack.storage.schema import (
    funder_flows,
    funder_positions,
    funders,
    funding_plans,
    journal_entries,
    loans,
)

GL_ACCOUNTS: dict[Flow, tuple[Account, Account]] = {
    Flow.DISBURSEMENT: (Account.FUNDER_PAYABLE, Account.FUNDER_PARTICIPATION),
    Flow.PRINCIPAL: (Account.FUNDER_PARTICIPATION, Account.FUNDER_PAYABLE),
    Flow.INTEREST: (Account.FUNDER_SHARE_EXPENSE, Account.FUNDER_PAYABLE),
    Flow.FEE: (Account.FUNDER_SHARE_EXPENSE, Account.FUNDER_PAYABLE),
    Flow.PENALTY: (Account.FUNDER_SHARE_EXPENSE, Account.FUNDER_PAYABLE),
    Flow.RECOVERY: (Account.FUNDER_SHARE_EXPENSE, Account.FUNDER_PAYABLE),
    Flow.SALE: (Account.FUNDER_SHARE_EXPENSE, Account.FUNDER_PAYABLE),
    Flow.CHARGE_OFF: (Account.FUNDER_PARTICIPATION, Account.CHARGE_OFF_EXPENSE),
    Flow.WAIVER: (Account.FUNDER_PARTICIPATION, Account.SETTLEMENT_DISCOUNT),
    Flow.GUARANTEE: (Account.FUNDER_PARTICIPATION, Account.FUNDER_PAYABLE),
    Flow.BUYBACK: (Account.FUNDER_PARTICIPATION, Account.FUNDER_PAYABLE),
    Flow.CAPITALISED: (Account.FUNDER_SHARE_EXPENSE, Account.FUNDER_PARTICIPATION),
}
"""(debit, credit) of a bank's part of each flow. The platform's own parts need no entry: the
loan book already is its balance sheet, less the banks' participation. Spread and the
platform's acquisitions move nothing between the platform and a bank."""


@dataclass(frozen=True, slots=True)
class _FunderFacts:
    is_platform: bool
    yield_rate: Decimal
    guarantee: tuple[int, int] | None
    """(trigger DPD, guarantee limit in fen) for a bank with a first-loss guarantee."""


def _facts(definition: str) -> _FunderFacts:
    data = json.loads(definition)
    g = data.get("guarantee")
    guarantee = None if g is None else (int(g["trigger_dpd"]), to_fen(Decimal(g["balance"])))
    return _FunderFacts(data["kind"] == "platform", Decimal(data["funding_cost"]), guarantee)


class SubLedger:
    """One transaction's view of the funder sub-ledgers."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._facts: dict[str, _FunderFacts] = {}
        self._platform: str | None = None

    # --- reading ----------------------------------------------------------------------

    def facts(self, funder_id: str) -> _FunderFacts:
        if funder_id not in self._facts:
            row = self.conn.execute(
                select(funders.c.definition).where(funders.c.id == funder_id)
            ).first()
            if row is None:
                raise NotFound(f"no partner {funder_id!r}", field="funder")
            self._facts[funder_id] = _facts(row.definition)
        return self._facts[funder_id]

    def holdings(self, loan_id: int) -> dict[str, Holding]:
        """The loan's funder holdings (empty if it is not co-funded)."""
        rows = self.conn.execute(_HOLDINGS, {"ids": [loan_id]})
        return {
            r.funder_id: Holding(
                r.principal_fen, r.share_units, self._yield(r.funder_id, Decimal(r.annual_rate))
            )
            for r in rows
        }

    def platform_id(self) -> str:
        if self._platform is None:
            found = self.conn.execute(_PLATFORM).first()
            if found is None:
                raise Conflict(
                    "no platform funder is stored to take the share over", field="funder"
                )
            self._platform = str(found.id)
        return self._platform

    # --- writing ----------------------------------------------------------------------

    def open(self, loan_id: int, shares: Mapping[str, Decimal]) -> None:
        """Open a newly planned loan's positions: each funder's part of the disbursement."""
        loan = self.conn.execute(
            select(loans.c.principal_fen, loans.c.disbursement_date).where(loans.c.id == loan_id)
        ).one()
        self.open_many([(loan_id, loan.principal_fen, loan.disbursement_date, shares)])

    def open_many(self, opened: Sequence[tuple[int, int, date, Mapping[str, Decimal]]]) -> None:
        """`open` for many loans (id, principal in fen, disbursement date, shares), with one
        insert of positions and one of flows for them all."""
        positions: list[dict[str, Any]] = []
        flows: list[dict[str, Any]] = []
        for loan_id, principal_fen, day, shares in opened:
            units = {f: share_units(s) for f, s in shares.items()}
            parts = open_parts(principal_fen, units)
            held = dict.fromkeys(units, 0)
            for part in parts:
                held[part.funder_id] += part.fen
            positions += [
                {"loan_id": loan_id, "funder_id": f, "principal_fen": held[f], "share_units": u}
                for f, u in sorted(units.items())
            ]
            flows += _flow_rows(loan_id, day, f"disbursement:{loan_id}", parts)
        if positions:
            self.conn.execute(insert(funder_positions), positions)
        if flows:
            self.conn.execute(insert(funder_flows), flows)

    def on_payments(
        self, batch: Sequence[StoredSplit], entry_dates: Mapping[int, date] | None = None
    ) -> None:
        """Split stored payments between their loans' funders, in order (a loan may have
        several), reading and writing the positions once for the whole batch. Each split is
        dated on its entry's business date: from `entry_dates` where the caller knows it
        (it posted the entries), else read from the journal."""
        splits, terms = self._payment_terms(sorted({loan_id for _, loan_id, _, _ in batch}))
        funded = [b for b in batch if b[1] in splits]
        if not funded:
            return
        dates = self._entry_dates([entry_id for *_, entry_id in funded], entry_dates or {})
        flows: list[tuple[date, int, str, str, int, str]] = []
        for payment_id, loan_id, applied, entry_id in funded:
            guarantee_rate, fee_rate = terms[loan_id]
            guarantee = None
            if guarantee_rate and applied.get("fee", 0) > 0:
                guarantee = guarantee_fee_part(
                    self.platform_id(), applied["fee"], fee_rate, guarantee_rate
                )
            parts = splits[loan_id].pay(applied, guarantee)
            flows += _flow_values(loan_id, dates[entry_id], f"payment:{payment_id}", parts)
        rows = [
            (loan_id, funder_id, position)
            for loan_id, split in splits.items()
            for funder_id, position in split.moved()
        ]
        execute_rows(self.conn, _SAVE_POSITION, ("lid", "fid", "principal_fen"), rows)
        insert_rows(self.conn, _INSERT_FLOWS, _FLOW_COLUMNS, flows)

    def _payment_terms(
        self, loan_ids: Sequence[int]
    ) -> tuple[dict[int, LoanSplit], dict[int, tuple[Decimal, Decimal]]]:
        """Each co-funded loan's funders made ready for its payments (`LoanSplit`), with the
        loan's (guarantee fee per period, fee rate): two statements per chunk of loans and
        one for the definitions of their funders not known yet (a handful: parsed once per
        batch, not once per position)."""
        stakes: dict[int, list[tuple[str, int, int]]] = {}
        rates: dict[int, tuple[Decimal, Decimal]] = {}
        annual: dict[int, Decimal] = {}
        for chunk in chunks(loan_ids):
            rows = self.conn.execute(_PAYMENT_HOLDINGS, {"ids": chunk}).all()
            for loan_id, funder_id, position, units, annual_rate, fee_rate in rows:
                if loan_id not in stakes:  # unpacked: a Row's fields read slowly
                    stakes[loan_id] = []
                    rates[loan_id] = (cached_decimal(annual_rate), cached_decimal(fee_rate))
                stakes[loan_id].append((funder_id, position, units))
            if not rows:
                continue
            plans = self.conn.execute(_GUARANTEE_RATES, {"ids": sorted({r[0] for r in rows})})
            for loan_id, share, guarantee_rate in plans.all():
                added = cached_decimal(share) * cached_decimal(guarantee_rate)
                annual[loan_id] = annual.get(loan_id, _ZERO) + added
        self._learn({funder_id for held in stakes.values() for funder_id, _, _ in held})
        facts = self._facts
        splits: dict[int, LoanSplit] = {}
        terms: dict[int, tuple[Decimal, Decimal]] = {}
        for loan_id, held in stakes.items():
            rate, fee_rate = rates[loan_id]
            splits[loan_id] = LoanSplit(
                (
                    (f, position, units, rate if facts[f].is_platform else facts[f].yield_rate)
                    for f, position, units in held
                ),
                rate,
            )
            guaranteed = annual.get(loan_id, _ZERO)
            per_period = guarantee_fee_per_period(guaranteed) if guaranteed else _ZERO
            terms[loan_id] = (per_period, fee_rate)
        return splits, terms

    def _learn(self, funder_ids: Iterable[str]) -> None:
        """Read and parse the definitions of the funders not known yet, in one statement."""
        unknown = sorted(set(funder_ids) - set(self._facts))
        if not unknown:
            return
        for funder_id, definition in self.conn.execute(_DEFINITIONS, {"ids": unknown}):
            self._facts[funder_id] = _parsed_facts(definition)
        for funder_id in unknown:
            if funder_id not in self._facts:
                raise NotFound(f"no partner {funder_id!r}", field="funder")

    def on_reversal(self, payment_id: int, loan_id: int, entry_id: int) -> None:
        """Undo a payment's split, fen for fen, dated on the reversal's business date."""
        rows = self.conn.execute(
            select(funder_flows.c.funder_id, funder_flows.c.flow, funder_flows.c.amount_fen).where(
                funder_flows.c.source == f"payment:{payment_id}"
            )
        ).all()
        if not rows:
            return
        parts = reversed_parts(Part(r.funder_id, Flow(r.flow), r.amount_fen) for r in rows)
        holdings = self.holdings(loan_id)
        self._apply(loan_id, holdings, parts)
        self._store(loan_id, self._entry_date(entry_id), f"reversal:{payment_id}", parts)

    def capitalise(self, loan_id: int, fen: int, day: date, source: str) -> None:
        """A restructuring's capitalised amount joins each funder's position by its part.

        No cash moves: a bank's part is its share of income re-lent to the borrower, booked
        at close as funder share expense against its participation (`GL_ACCOUNTS`).
        """
        holdings = self.holdings(loan_id)
        parts = capitalised_parts(fen, holdings)
        if parts:
            self._apply(loan_id, holdings, parts)
            self._store(loan_id, day, source, parts)

    def charge_off(self, loan_id: int, day: date, flow: Flow = Flow.CHARGE_OFF) -> None:
        """Write every funder's remaining position of a charged-off loan off (each its own);
        with `Flow.WAIVER`, of a loan settled for less than its principal."""
        holdings = self.holdings(loan_id)
        parts = charge_off_parts(holdings, flow)
        self._apply(loan_id, holdings, parts)
        self._store(loan_id, day, f"{flow.value}:{loan_id}", parts)

    def transfer(self, loan_id: int, bank_id: str, kind: Flow, day: date) -> int:
        """Pay a bank its whole position of a loan and pass its stake to the platform.

        Returns the fen paid. Used by the guarantee payout (at close) and by buybacks.
        """
        platform = self.platform_id()
        holdings = self.holdings(loan_id)
        if bank_id not in holdings or holdings[bank_id].position == 0:
            raise Conflict(f"partner {bank_id!r} holds no part of loan {loan_id}", field="funder")
        if self.facts(bank_id).is_platform:
            raise Conflict("the platform cannot buy its own share back", field="funder")
        holdings.setdefault(platform, Holding(0, 0, Decimal(0)))
        paid = holdings[bank_id].position
        parts = transfer_parts(bank_id, platform, paid, kind)
        self._apply(loan_id, holdings, parts, after_transfer(holdings, bank_id, platform))
        self._store(loan_id, day, f"{kind.value}:{loan_id}:{bank_id}", parts)
        return paid

    # --- internals --------------------------------------------------------------------

    def _entry_dates(self, entry_ids: Sequence[int], known: Mapping[int, date]) -> dict[int, date]:
        dates = {i: known[i] for i in entry_ids if i in known}
        for chunk in chunks(sorted(set(entry_ids) - set(dates))):
            for r in self.conn.execute(_ENTRY_DATES, {"ids": chunk}):
                value = r.business_date
                dates[r.id] = value if isinstance(value, date) else date.fromisoformat(str(value))
        return dates

    def _yield(self, funder_id: str, loan_rate: Decimal) -> Decimal:
        facts = self.facts(funder_id)
        return loan_rate if facts.is_platform else facts.yield_rate

    def _entry_date(self, entry_id: int) -> date:
        value = self.conn.execute(
            select(journal_entries.c.business_date).where(journal_entries.c.id == entry_id)
        ).scalar_one()
        return value if isinstance(value, date) else date.fromisoformat(str(value))

    def _apply(
        self,
        loan_id: int,
        holdings: Mapping[str, Holding],
        parts: list[Part],
        shares: Mapping[str, int] | None = None,
    ) -> None:
        """Store the holdings after `parts` (and, for a transfer, the new shares in force)."""
        after = apply_parts(holdings, parts)
        stored = set(
            self.conn.execute(
                select(funder_positions.c.funder_id).where(funder_positions.c.loan_id == loan_id)
            ).scalars()
        )
        for funder_id, held in sorted(after.items()):
            units = held.share_units if shares is None else shares[funder_id]
            values = {"principal_fen": held.position, "share_units": units}
            if funder_id not in stored:
                row = {"loan_id": loan_id, "funder_id": funder_id, **values}
                self.conn.execute(insert(funder_positions), row)
            elif (holdings[funder_id].position, holdings[funder_id].share_units) != (
                held.position,
                units,
            ):
                self.conn.execute(
                    update(funder_positions)
                    .where(
                        funder_positions.c.loan_id == loan_id,
                        funder_positions.c.funder_id == funder_id,
                    )
                    .values(**values)
                )

    def _store(self, loan_id: int, day: date, source: str, parts: Iterable[Part]) -> None:
        rows = _flow_rows(loan_id, day, source, parts)
        if rows:
            self.conn.execute(insert(funder_flows), rows)


StoredSplit = tuple[int, int, Mapping[str, int], int]
"""(payment id, loan id, applied components in fen, journal entry id) of a stored payment."""

_SAVE_POSITION = (
    update(funder_positions)
    .where(
        funder_positions.c.loan_id == bindparam("lid"),
        funder_positions.c.funder_id == bindparam("fid"),
    )
    .values(principal_fen=bindparam("principal_fen"))
)


# Statements built once: a day's payments run them for every batch.
_INSERT_FLOWS = insert(funder_flows)
_FLOW_COLUMNS = ("business_date", "loan_id", "funder_id", "flow", "amount_fen", "source")
"""The columns of `_flow_rows`, in order: `on_payments` writes its rows as tuples."""
_FLOW_TEXT = {flow: flow.value for flow in Flow}
"""Each flow's stored name: a dict lookup costs a fifth of the enum's `.value` property."""
_HOLDINGS = (
    select(
        funder_positions.c.loan_id,
        funder_positions.c.funder_id,
        funder_positions.c.principal_fen,
        funder_positions.c.share_units,
        loans.c.annual_rate,
    )
    .join(loans, loans.c.id == funder_positions.c.loan_id)
    .where(funder_positions.c.loan_id.in_(bindparam("ids", expanding=True)))
)
_PAYMENT_HOLDINGS = _HOLDINGS.add_columns(loans.c.fee_rate)
_DEFINITIONS = select(funders.c.id, funders.c.definition).where(
    funders.c.id.in_(bindparam("ids", expanding=True))
)
_ZERO = Decimal(0)
_GUARANTEE_RATES = select(
    funding_plans.c.loan_id, funding_plans.c.share, funding_plans.c.guarantee_fee_rate
).where(
    funding_plans.c.loan_id.in_(bindparam("ids", expanding=True)),
    # A share without a guarantee adds nothing to its loan's rate: most rows, left unread.
    funding_plans.c.guarantee_fee_rate != "0",
)
_PLATFORM = select(funders.c.id).where(funders.c.kind == "platform").order_by(funders.c.id)
_ENTRY_DATES = select(journal_entries.c.id, journal_entries.c.business_date).where(
    journal_entries.c.id.in_(bindparam("ids", expanding=True))
)


def _flow_values(
    loan_id: int, day: date, source: str, parts: Iterable[PartValues]
) -> list[tuple[date, int, str, str, int, str]]:
    """`_flow_rows` of parts given as values, as value tuples in `_FLOW_COLUMNS` order, for
    `execute_rows`: a day's payments write about five flows each."""
    return [(day, loan_id, f, _FLOW_TEXT[flow], fen, source) for f, flow, fen in parts]


def _flow_rows(loan_id: int, day: date, source: str, parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [
        {
            "business_date": day,
            "loan_id": loan_id,
            "funder_id": p.funder_id,
            "flow": p.flow.value,
            "amount_fen": p.fen,
            "source": source,
        }
        for p in parts
    ]


# --- close of business ----------------------------------------------------------------


def close_funding(conn: Connection, day: date) -> tuple[int, JournalEntry | None]:
    """The funders' part of the close: charge-offs, guarantee payouts, then the day's GL entry.

    Returns the number of funder flows the day produced and the entry to post (None if no
    bank's position or due moved).
    """
    ledger = SubLedger(conn)
    _split_charge_offs(ledger, day)
    _pay_guarantees(ledger, day)
    return _day_entry(conn, day)


def _split_charge_offs(ledger: SubLedger, day: date) -> None:
    charged = ledger.conn.execute(
        text(
            "SELECT DISTINCT e.loan_id FROM loan_events e JOIN funder_positions p"
            " ON p.loan_id = e.loan_id WHERE e.business_date = :day AND e.kind = 'status'"
            " AND e.new = 'charged_off' ORDER BY e.loan_id"
        ),
        {"day": day},
    ).scalars()
    for loan_id in list(charged):
        ledger.charge_off(loan_id, day)


_BANKS = (
    select(funders.c.id, funders.c.definition)
    .where(funders.c.kind != "platform")
    .order_by(funders.c.id)
)


@lru_cache(maxsize=256)
def _parsed_facts(definition: str) -> _FunderFacts:
    """`_facts` of a definition, parsed once per text: it is a pure function of the text, and
    the close reads every bank's guarantee each day (and each batch of payments, the
    definitions of its loans' funders)."""
    return _facts(definition)


def _pay_guarantees(ledger: SubLedger, day: date) -> None:
    """Banks with a first-loss guarantee are paid their stake in loans at the trigger DPD.

    Per guaranteed bank, only its stakes in loans at or past its trigger are read (its
    positions index and the loans' DPD), not every co-funded loan. Loans are taken in id
    order while the guarantee's remaining limit covers the whole stake; a stake the remaining
    limit cannot cover stays with the bank (the guarantee is exhausted).
    """
    for funder_id, definition in ledger.conn.execute(_BANKS).all():
        # The banks' definitions come with their ids (one statement, not one per bank), and
        # seed the ledger's facts as `SubLedger.facts` would parse them.
        guarantee = ledger._facts.setdefault(funder_id, _parsed_facts(definition)).guarantee
        if guarantee is None:
            continue
        trigger, limit = guarantee
        due = ledger.conn.execute(
            text(
                "SELECT p.loan_id, p.principal_fen FROM funder_positions p"
                " JOIN loans l ON l.id = p.loan_id WHERE p.funder_id = :f"
                " AND p.principal_fen > 0 AND l.status = 'active' AND l.dpd >= :trigger"
                " ORDER BY p.loan_id"
            ),
            {"f": funder_id, "trigger": trigger},
        ).all()
        remaining = limit - guarantee_paid(ledger.conn, funder_id) if due else 0
        for loan_id, position in due:
            if position <= remaining:
                remaining -= ledger.transfer(loan_id, funder_id, Flow.GUARANTEE, day)


def guarantee_paid(conn: Connection, funder_id: str) -> int:
    """Fen a bank's first-loss guarantee has paid out so far."""
    paid = conn.execute(_GUARANTEE_PAID, {"f": funder_id}).scalar()
    return int(paid or 0)


_GUARANTEE_PAID = text(
    "SELECT COALESCE(SUM(amount_fen), 0) FROM funder_flows"
    f" WHERE funder_id = :f AND flow = '{Flow.GUARANTEE.value}'"
)
"""The kind as a literal: the partial index of guarantee flows serves it whatever the plan
(a plan made for any parameter values could not assume `flow = :param` matches it)."""


def _day_entry(conn: Connection, day: date) -> tuple[int, JournalEntry | None]:
    """One entry for the day's bank flows, aggregated per funder and account."""
    rows = conn.execute(
        text(
            "SELECT x.funder_id, x.flow, SUM(x.amount_fen), COUNT(*) FROM funder_flows x"
            " JOIN funders f ON f.id = x.funder_id"
            " WHERE x.business_date = :day AND f.kind <> 'platform'"
            " GROUP BY x.funder_id, x.flow ORDER BY x.funder_id, x.flow"
        ),
        {"day": day},
    ).all()
    net: dict[tuple[Account, str], int] = defaultdict(int)
    for funder_id, flow, fen, _ in rows:
        accounts = GL_ACCOUNTS.get(Flow(flow))
        if accounts is None:
            continue
        net[(accounts[0], funder_id)] += int(fen)
        net[(accounts[1], funder_id)] -= int(fen)
    legs = [
        leg(account, Side.DEBIT, from_fen(fen), funder_id=funder_id)
        for (account, funder_id), fen in sorted(
            net.items(), key=lambda kv: (kv[0][1], kv[0][0].code)
        )
    ]
    entry = entry_or_none(EventType.COB_FUNDING, day, f"cob:{day.isoformat()}:funding", legs)
    counted = conn.execute(
        text("SELECT COUNT(*) FROM funder_flows WHERE business_date = :day"), {"day": day}
    ).scalar()
    return int(counted or 0), entry


# --- reconciliation -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mismatch:
    what: str
    expected: Decimal
    found: Decimal


def reconcile_funders(conn: Connection) -> list[Mismatch]:
    """Loans to funders and funders to the general ledger, to the fen."""
    return loans_to_positions(conn) + _flows_to_positions(conn) + _funders_to_gl(conn)


def loans_to_positions(conn: Connection) -> list[Mismatch]:
    rows = conn.execute(
        text(
            "SELECT l.id, l.bal_principal, SUM(p.principal_fen) FROM loans l"
            " JOIN funder_positions p ON p.loan_id = l.id GROUP BY l.id, l.bal_principal"
            " HAVING l.bal_principal <> SUM(p.principal_fen)"
        )
    )
    return [
        Mismatch(f"loan {lid} principal vs its funders' positions", from_fen(b), from_fen(s))
        for lid, b, s in rows
    ]


def position_sql(alias: str) -> str:
    """SQL for the sign a flow of `alias` moves its funder's position by (0: it does not)."""
    arms = " ".join(f"WHEN '{f.value}' THEN {s}" for f, s in POSITION_SIGN.items())
    return f"(CASE {alias}.flow {arms} ELSE 0 END)"


def _due_sql(alias: str) -> str:
    arms = " ".join(f"WHEN '{f.value}' THEN {s}" for f, s in DUE_SIGN.items())
    return f"(CASE {alias}.flow {arms} ELSE 0 END)"


def _flows_to_positions(conn: Connection) -> list[Mismatch]:
    rows = conn.execute(
        text(
            "SELECT p.loan_id, p.funder_id, p.principal_fen,"
            f" COALESCE(SUM({position_sql('x')} * x.amount_fen), 0)"
            " FROM funder_positions p LEFT JOIN funder_flows x"
            " ON x.loan_id = p.loan_id AND x.funder_id = p.funder_id"
            " GROUP BY p.loan_id, p.funder_id, p.principal_fen"
            f" HAVING p.principal_fen <> COALESCE(SUM({position_sql('x')} * x.amount_fen), 0)"
        )
    )
    return [position_mismatch(lid, fid, p, s) for lid, fid, p, s in rows]


def position_mismatch(loan_id: int, funder_id: str, position: int, flows: int) -> Mismatch:
    """A funder's position in a loan that is not the signed sum of its flows."""
    return Mismatch(
        f"loan {loan_id} funder {funder_id}: position vs its flows",
        from_fen(flows),
        from_fen(position),
    )


def _funders_to_gl(conn: Connection) -> list[Mismatch]:
    """Each bank's GL balances equal its closed flows: participation, payable, income share."""
    closed = last_closed(conn)
    return gl_mismatches(_expected_gl(conn, closed), _gl_by_funder(conn))


def gl_mismatches(
    expected: Mapping[tuple[str, str], int], found: Mapping[tuple[str, str], int]
) -> list[Mismatch]:
    """Each (account code, funder) whose GL balance is not what its closed flows imply."""
    out = []
    for key in sorted(set(expected) | set(found), key=lambda k: (k[1], k[0])):
        want, got = expected.get(key, 0), found.get(key, 0)
        if want != got:
            account, funder_id = key
            out.append(
                Mismatch(f"{account} of {funder_id} (flows vs GL)", from_fen(want), from_fen(got))
            )
    return out


def _expected_gl(conn: Connection, closed: Any) -> dict[tuple[str, str], int]:
    """Net debit per (account code, funder) implied by the bank flows of closed dates."""
    if closed is None:
        return {}
    rows = conn.execute(
        text(
            "SELECT x.funder_id, x.flow, SUM(x.amount_fen) FROM funder_flows x"
            " JOIN funders f ON f.id = x.funder_id WHERE f.kind <> 'platform'"
            " AND x.business_date <= :closed GROUP BY x.funder_id, x.flow"
        ),
        {"closed": closed},
    )
    return expected_gl_of((str(f), str(flow), int(fen)) for f, flow, fen in rows)


def expected_gl_of(sums: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str], int]:
    """Net debit per (account code, funder) of the banks' (funder, flow, fen) flow sums."""
    net: dict[tuple[str, str], int] = defaultdict(int)
    for funder_id, flow, fen in sums:
        accounts = GL_ACCOUNTS.get(Flow(flow))
        if accounts is not None:
            net[(accounts[0].code, funder_id)] += fen
            net[(accounts[1].code, funder_id)] -= fen
    return {k: v for k, v in net.items() if v}


def _gl_by_funder(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        text(
            "SELECT account, funder_id, SUM(debit_fen) - SUM(credit_fen) FROM journal_lines"
            " WHERE funder_id IS NOT NULL GROUP BY account, funder_id"
        )
    )
    return {(a, f): int(n) for a, f, n in rows if int(n)}


__all__ = [
    "GL_ACCOUNTS",
    "Mismatch",
    "SubLedger",
    "close_funding",
    "guarantee_paid",
    "reconcile_funders",
]
