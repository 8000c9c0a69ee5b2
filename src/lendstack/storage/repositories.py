"""SQL implementations of the servicing ports, and the unit of work that binds them."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from operator import attrgetter, itemgetter
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, exists, insert, or_, select, update
from sqlalchemy import delete as sql_delete

from lendstack.core.errors import InvariantViolation, NotFound
from lendstack.core.money import from_fen, to_fen
from lendstack.funding import Policy
from lendstack.servicing.domain.bills import Bill, PaidBill, bill_as_of_close
from lendstack.servicing.domain.ledger import Account, EventType, JournalEntry, Posting, Side
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import InstallmentState, LoanState, accrued_through
from lendstack.servicing.domain.payments import Applied, InstallmentPart
from lendstack.servicing.ports import LoanProfile, PlanTerms, StoredPayment
from lendstack.storage import mapping
from lendstack.storage.batches import chunks, execute_many, execute_rows, insert_rows, inserted_ids
from lendstack.storage.calendar import last_closed
from lendstack.storage.funding import SqlFunding
from lendstack.storage.loan_settlements import SqlLoanSettlements
from lendstack.storage.schema import (
    installments,
    journal_entries,
    journal_lines,
    loan_profiles,
    loans,
    payment_parts,
    payments,
)
from lendstack.storage.subledger import SubLedger

ACCOUNTS_BY_CODE = {a.code: a for a in Account}

# Statements built once: payments run them thousands of times a second, and a prebuilt
# statement skips SQLAlchemy's per-call construction and cache-key work.
_LOAN = select(loans).where(loans.c.id == bindparam("lid"))
_ITEMS = (
    select(installments)
    .where(installments.c.loan_id == bindparam("lid"), installments.c.version == bindparam("ver"))
    .order_by(installments.c.number)
)
_SAVE_LOAN = update(loans).where(loans.c.id == bindparam("lid"))
_SAVE_ITEM = update(installments).where(
    installments.c.loan_id == bindparam("lid"),
    installments.c.version == bindparam("ver"),
    installments.c.number == bindparam("num"),
)
_PAY_ITEM = (
    update(installments)
    .where(
        installments.c.loan_id == bindparam("lid"),
        installments.c.version == bindparam("ver"),
        installments.c.number == bindparam("num"),
    )
    .values(
        paid_principal_fen=bindparam("paid_principal"),
        paid_interest_fen=bindparam("paid_interest"),
        paid_fee_fen=bindparam("paid_fee"),
        active=True,
    )
)
"""`_SAVE_ITEM` for an installment only paid on: the same row, without rewriting the columns
a payment never moves (fewer values to bind on the hot path)."""
_INSERT_LINES = insert(journal_lines)
_INSERT_ITEMS = insert(installments)
_RETIRE_ITEMS = (
    update(installments)
    .where(installments.c.loan_id == bindparam("lid"), installments.c.active)
    .values(active=False)
)
_INSERT_PARTS = insert(payment_parts)
_NEW_LOAN_COLUMNS = (
    *mapping.CONTRACT_COLUMNS,
    *mapping.STATE_COLUMNS,
    "reference",
    "currency",
    "created_at",
)
"""A new loan row's columns, in `SqlLoans.add_many`'s value order."""
_LOAN_COLUMNS = [c for c in loans.columns if c.name != "created_at"]
"""A loan's columns but its creation time, which no loan state holds (and whose text would
be parsed into a datetime for every loan read)."""
_LoanRow = namedtuple("_LoanRow", [c.name for c in _LOAN_COLUMNS])  # type: ignore[misc]
"""A `loans` row as `_MANY_LOANS` returns it, for `mapping.loan_from`."""
_MANY_LOANS = (
    select(*_LOAN_COLUMNS)
    .where(loans.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(loans.c.id)
)

_MANY_LOANS_LOCKED = _MANY_LOANS.with_for_update()
_CURRENT = installments.join(
    loans,
    (loans.c.id == installments.c.loan_id) & (loans.c.schedule_version == installments.c.version),
)


def _current_items(*columns: Any) -> Any:
    """The `columns` of the current schedule version's installments of many loans, after the
    loan id, in loan and installment order."""
    return (
        select(installments.c.loan_id, *columns)
        .select_from(_CURRENT)
        .where(installments.c.loan_id.in_(bindparam("ids", expanding=True)))
        .order_by(installments.c.loan_id, installments.c.number)
    )


_CURRENT_ITEMS = _current_items(*(installments.c[name] for name in mapping.ITEM_COLUMNS))
"""The current schedule version's installments of many loans, as `mapping.ITEM_COLUMNS`
after the loan id."""
_PRIOR = installments.alias("prior")
_UNPAID_FEN = (
    installments.c.principal_fen
    + installments.c.interest_fen
    + installments.c.fee_fen
    - installments.c.paid_principal_fen
    - installments.c.paid_interest_fen
    - installments.c.paid_fee_fen
)
_AFTER_BILLED = ~(
    exists()
    .where(
        _PRIOR.c.loan_id == installments.c.loan_id,
        _PRIOR.c.version == installments.c.version,
        _PRIOR.c.number == installments.c.number - 1,
        ~_PRIOR.c.billed,
    )
    .correlate(installments)
)
_DUE = or_(installments.c.billed & (_UNPAID_FEN > 0), ~installments.c.billed & _AFTER_BILLED)
_DUE_ITEMS = _CURRENT_ITEMS.where(_DUE)
"""`_CURRENT_ITEMS` as a regular payment reads them (`SqlLoans.for_payment`): the billed
installments with something unpaid (in fen, exactly `InstallmentState.unpaid > 0`), and the
unbilled ones whose predecessor is not unbilled: the first unbilled one, if any, always
(an index lookup per row, where "the lowest unbilled number" would scan the schedule)."""
_BillRow = namedtuple("_BillRow", mapping.BILL_COLUMNS)  # type: ignore[misc]
"""A `_BILLS` row: a plain tuple's fields read ~10x faster than SQLAlchemy's Row's."""
_BILL_ITEM_COLUMNS = ("number", *mapping.ITEM_COLUMNS[3:9])  # its amounts, due and paid
"""An installment's columns as `mapping.due_part` takes them."""
_BILL_ITEMS = _current_items(
    *(installments.c[name] for name in _BILL_ITEM_COLUMNS), installments.c.billed
).where(_DUE)
"""`_DUE_ITEMS` as a whole bill's payment reads them (`SqlLoans.bills`): the amounts only."""
_BILLS = (
    select(*(loans.c[name] for name in mapping.BILL_COLUMNS))
    .where(loans.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(loans.c.id)
    .with_for_update()
)
_PAY_BILL_ITEM = _SAVE_ITEM.values(
    paid_principal_fen=installments.c.paid_principal_fen + bindparam("principal"),
    paid_interest_fen=installments.c.paid_interest_fen + bindparam("interest"),
    paid_fee_fen=installments.c.paid_fee_fen + bindparam("fee"),
)
"""An installment paid its unpaid part of each kind (`_PAID_PART_NAMES`)."""
_BY_REFERENCES = select(loans.c.id, loans.c.reference).where(
    loans.c.reference.in_(bindparam("refs", expanding=True))
)
_BY_KEY = select(payments).where(payments.c.idempotency_key == bindparam("key"))
_BY_KEYS = select(payments).where(payments.c.idempotency_key.in_(bindparam("keys", expanding=True)))


def now() -> datetime:
    return datetime.now(UTC)


class SqlLoans:
    def __init__(
        self, conn: Connection, as_of_close: Callable[[], date | None] | None = None
    ) -> None:
        """`as_of_close` gives the day whose close's accrual the loans read here carry (by
        default the last closed day). A close may defer writing accruals (`storage.cob.accrue`):
        a loan is read as that close brought it."""
        self.conn = conn
        self._as_of_close = as_of_close or SqlCalendar(conn).last_closed
        self._loaded: dict[int, LoanState] = {}
        self._saved: dict[int, tuple[LoanState, tuple[Any, ...]]] = {}
        """Each loan's state columns (`mapping.STATE_COLUMNS` order) as `_many` read them or
        `save_many` last wrote them, after the state they were read into or written from:
        `save_many` writes only the columns that differ, and converts only the amounts that
        differ from that state's (`mapping.state_values`)."""

    def add(self, loan: LoanState, reference: str | None) -> int:
        return self.add_many([(loan, reference)])[0]

    def add_many(self, batch: Sequence[tuple[LoanState, str | None]]) -> list[int]:
        """Insert new loans and their installments; their ids, in order. The rows go as value
        tuples (`execute_rows`): a dozen or more installments per loan, and a loan row of
        forty-odd columns, each built as a dict only for the driver to take apart again."""
        created = now()
        rows = [
            (
                *mapping.contract_values(loan.contract),
                *mapping.state_values(loan),
                reference,
                "CNY",
                created,
            )
            for loan, reference in batch
        ]
        ids: list[int] = []
        for chunk in chunks(rows):
            ids += inserted_ids(self.conn, loans, chunk, _NEW_LOAN_COLUMNS)
        values = mapping.installment_values
        items = [
            values(loan_id, loan.schedule_version, i)
            for (loan, _), loan_id in zip(batch, ids, strict=True)
            for i in loan.installments
        ]
        execute_rows(self.conn, _INSERT_ITEMS, mapping.INSTALLMENT_COLUMNS, items)
        return ids

    def _insert_installments(self, loan: LoanState) -> None:
        rows = [
            mapping.installment_columns(loan.id, loan.schedule_version, i)
            for i in loan.installments
        ]
        if rows:
            self.conn.execute(_INSERT_ITEMS, rows)

    def _items(self, loan_id: int, version: int) -> tuple[Any, ...]:
        rows = self.conn.execute(_ITEMS, {"lid": loan_id, "ver": version})
        return tuple(mapping.installment_from(r) for r in rows)

    def get(self, loan_id: int, *, for_update: bool = False) -> LoanState:
        query = _LOAN.with_for_update() if for_update else _LOAN
        row = self.conn.execute(query, {"lid": loan_id}).first()
        if row is None:
            raise NotFound(f"no loan {loan_id}", field="loan_id")
        items = self._items(loan_id, row.schedule_version)
        state = self._accrued(row, mapping.loan_from(row, items))
        self._loaded[loan_id] = state
        return state

    def _accrued(self, row: Any, stored: LoanState) -> LoanState:
        """The loan of `row` (read as `stored`) with the accrual the last close left unwritten
        (none on a row written since: `accrual_dirty`)."""
        if row.accrual_dirty:
            return stored
        day = self._as_of_close()
        return stored if day is None else accrued_through(stored, day)

    def get_many(
        self, loan_ids: Collection[int], *, for_update: bool = False
    ) -> dict[int, LoanState]:
        """Many loans in two statements per chunk (rows, then their current installments)."""
        query = _MANY_LOANS_LOCKED if for_update else _MANY_LOANS
        return self._found(loan_ids, self._many(loan_ids, query, _CURRENT_ITEMS))

    def for_payment(
        self, loan_ids: Collection[int], whole: Collection[int] = ()
    ) -> dict[int, LoanState]:
        """Many loans, locked, for payments: those in `whole` as `get_many` reads them, the
        others with only the installments a regular payment (`apply_payment`, or a recovery)
        reads or changes: the billed ones with something unpaid, which it settles, and the
        first unbilled one, whose presence alone it asks about (whether a loan with nothing
        receivable is paid off; `_DUE_ITEMS` may add an unbilled one after a billed one,
        which a payment passes on untouched). A loan runs to dozens of installments and a
        payment touches one or two.

        Such a state serves a regular payment and the `save_many` after it only: a save
        writes the installments that moved and the loan's columns, which these installments
        determine (the oldest unpaid due date). A prepayment re-issues the whole schedule:
        its loan goes in `whole`.
        """
        partial = set(loan_ids) - set(whole)
        found = self._many(partial, _MANY_LOANS_LOCKED, _DUE_ITEMS)
        found.update(self._many(set(loan_ids) - partial, _MANY_LOANS_LOCKED, _CURRENT_ITEMS))
        return self._found(loan_ids, found)

    def bills(self, loan_ids: Collection[int]) -> dict[int, Bill]:
        """Many loans, locked, as a payment of each one's whole bill reads them (`Bill`: the
        balances, the accrual period brought to the last close as `get` brings it, and the
        billed installments' unpaid parts), by id; an unknown id is left out."""
        found: dict[int, Bill] = {}
        as_of = self._as_of_close()
        due_part, bill_from = mapping.due_part, mapping.bill_from
        for ids in chunks(sorted(set(loan_ids))):
            rows = [_BillRow._make(r) for r in self.conn.execute(_BILLS, {"ids": ids}).all()]
            dues: dict[int, list[InstallmentPart]] = {row.id: [] for row in rows}
            unbilled: set[int] = set()
            for loan_id, *item, billed in self.conn.execute(_BILL_ITEMS, {"ids": ids}).all():
                if billed:
                    dues[loan_id].append(due_part(*item))
                else:
                    unbilled.add(loan_id)
            for row in rows:
                bill = bill_from(row, tuple(dues[row.id]), row.id in unbilled)
                found[row.id] = bill if row.accrual_dirty else bill_as_of_close(bill, as_of)
        return found

    def save_bills(self, paid: Sequence[PaidBill]) -> None:
        """Write the loans whose whole bills were paid (`pay_bill`): their balances, their
        accrual brought to date, the bill's installments paid up, and, where the last of it
        was paid, the loan closed. Each loan once."""
        open_rows: list[tuple[Any, ...]] = []
        closed_rows: list[tuple[Any, ...]] = []
        items: list[tuple[Any, ...]] = []
        for bill in paid:
            b = bill.balances
            amounts = (
                to_fen(b.principal),
                to_fen(b.interest),
                to_fen(b.fee),
                to_fen(b.penalty),
                *mapping.period_values(bill.period),
            )
            if bill.paid_off:
                closed_rows.append((*amounts, _PAID_OFF, bill.entry.business_date, bill.loan_id))
            else:
                open_rows.append((*amounts, bill.loan_id))
            items += [
                (bill.loan_id, bill.schedule_version, p.number, *mapping.part_fen(p))
                for p in bill.parts
            ]
            self._loaded.pop(bill.loan_id, None)  # read anew if wanted again
            self._saved.pop(bill.loan_id, None)
        execute_rows(self.conn, _SAVE_BILL, _BILL_NAMES, open_rows)
        execute_rows(self.conn, _SAVE_BILL, _CLOSED_BILL_NAMES, closed_rows)
        execute_rows(self.conn, _PAY_BILL_ITEM, _PAID_PART_NAMES, items)

    def _many(self, loan_ids: Collection[int], query: Any, item_query: Any) -> dict[int, LoanState]:
        """The loans of `query` with the installments of `item_query`, by id (two statements
        per chunk); an unknown id is left out."""
        found: dict[int, LoanState] = {}
        for ids in chunks(sorted(set(loan_ids))):
            rows = self.conn.execute(query, {"ids": ids}).all()
            items: dict[int, list[Any]] = {row.id: [] for row in rows}
            installment_of = mapping.installment_of
            for item in self.conn.execute(item_query, {"ids": ids}).all():
                items[item[0]].append(installment_of(*item[1:]))
            for row in rows:
                loan: Any = _LoanRow._make(row)  # SQLAlchemy's Row reads a field ~10x slower
                stored = mapping.loan_from(loan, tuple(items[loan.id]))
                found[loan.id] = self._accrued(loan, stored)
                # The row as it stands, and the state it holds: a save writes what differs.
                self._saved[loan.id] = (stored, _row_state(loan))
        return found

    def _found(
        self, loan_ids: Collection[int], found: dict[int, LoanState]
    ) -> dict[int, LoanState]:
        """`found`, remembered for `save`, if it holds every one of `loan_ids`."""
        missing = set(loan_ids) - set(found)
        if missing:
            raise NotFound(f"no loan {min(missing)}", field="loan_id")
        self._loaded.update(found)
        return found

    def by_reference(self, reference: str) -> LoanState | None:
        return self.by_references([reference]).get(reference)

    def by_references(self, references: Collection[str]) -> dict[str, LoanState]:
        """The loans booked under any of `references`, by reference."""
        ids: dict[int, str] = {}
        for chunk in chunks(sorted(set(references))):
            rows = self.conn.execute(_BY_REFERENCES, {"refs": chunk})
            ids.update((row.id, row.reference) for row in rows)
        if not ids:
            return {}
        return {ids[loan_id]: loan for loan_id, loan in self.get_many(list(ids)).items()}

    def save(self, loan: LoanState) -> None:
        before = self._loaded.get(loan.id) or self.get(loan.id)
        self._saved.pop(loan.id, None)  # written whole: a later `save_many` writes it whole
        self.conn.execute(_SAVE_LOAN, {"lid": loan.id, **mapping.state_columns(loan)})
        if loan.schedule_version != before.schedule_version:
            self._supersede(loan)
        else:
            self._update_changed(loan, before)
        self._loaded[loan.id] = loan

    def save_many(self, states: Sequence[LoanState]) -> None:
        """Save loan states in order, as `save` one after another would; a loan may appear
        more than once. Loans on their loaded schedule are written with one multi-row update
        per table; a loan whose schedule was re-issued (a prepayment) takes `save` per state,
        so each superseded version keeps the state it had when it was replaced."""
        by_loan: dict[int, list[LoanState]] = {}
        for state in states:
            by_loan.setdefault(state.id, []).append(state)
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        paid: list[tuple[Any, ...]] = []
        items: list[dict[str, Any]] = []
        for loan_id, seq in by_loan.items():
            before = self._loaded.get(loan_id) or self.get(loan_id)
            if any(s.schedule_version != before.schedule_version for s in seq):
                for state in seq:
                    self.save(state)
                continue
            loan = seq[-1]
            names, values = self._moved_columns(loan)
            if len(names) > 1:  # a state whose columns all stand as they are writes nothing
                by_columns.setdefault(names, []).append(values)
            changed = self._changed_items(loan, before)
            paid += changed[0]
            items += changed[1]
            self._loaded[loan.id] = loan
        for names, same in by_columns.items():  # a payment moves the same few columns
            execute_rows(self.conn, _SAVE_LOAN, names, same)
        execute_rows(self.conn, _PAY_ITEM, _PAID_NAMES, paid)
        if items:
            execute_many(self.conn, _SAVE_ITEM, items)

    def _moved_columns(self, loan: LoanState) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """`_SAVE_LOAN`'s names and values for `loan` (the loan id last, as "lid"): its state
        columns that differ from its row as this transaction read or last wrote it (all of
        them if it has none). The row ends exactly as if every column were written; an
        UPDATE that leaves an indexed column out (the status, the oldest due date) spares
        SQLite the index's rewrite."""
        saved = self._saved.get(loan.id)
        if saved is None:
            return _ALL_STATE, (*mapping.state_values(loan), loan.id)
        values = mapping.state_values(loan, *saved)
        old = saved[1]
        moved = [i for i, (v, was) in enumerate(zip(values, old, strict=True)) if v != was]
        if not moved:
            return _LID, (loan.id,)
        self._saved[loan.id] = (loan, values)  # the row now: equal to `old` where not moved
        names = tuple(_STATE_NAMES[i] for i in moved)
        return (*names, "lid"), (*(values[i] for i in moved), loan.id)

    def _supersede(self, loan: LoanState) -> None:
        self.conn.execute(_RETIRE_ITEMS, {"lid": loan.id})
        self._insert_installments(loan)

    def _update_changed(self, loan: LoanState, before: LoanState) -> None:
        paid, items = self._changed_items(loan, before)
        for values in paid:
            self.conn.execute(_PAY_ITEM, dict(zip(_PAID_NAMES, values, strict=True)))
        for row in items:
            self.conn.execute(_SAVE_ITEM, row)

    @staticmethod
    def _changed_items(
        loan: LoanState, before: LoanState
    ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
        """The installments that moved since `before`, as rows for `_PAY_ITEM` (only paid
        amounts moved: a payment; value tuples in `_PAID_NAMES` order) and for `_SAVE_ITEM`
        (anything else moved)."""
        old = {i.number: i for i in before.installments}
        paid: list[tuple[Any, ...]] = []
        rows: list[dict[str, Any]] = []
        for item in loan.installments:
            was = old.get(item.number)
            if was is item or was == item:  # a payment passes untouched installments on as is
                continue
            if was is not None and _same_terms(was, item):
                paid.append((loan.id, loan.schedule_version, item.number, *mapping.paid_fen(item)))
                continue
            key = {"lid": loan.id, "ver": loan.schedule_version, "num": item.number}
            values = mapping.installment_columns(loan.id, loan.schedule_version, item)
            rows.append({**key, **_without_key(values)})
        return paid, rows

    def restore_schedule(self, loan: LoanState, version: int) -> LoanState:
        """Drop schedule versions after `version` and make it current again."""
        mine = installments.c.loan_id == loan.id
        self.conn.execute(sql_delete(installments).where(mine, installments.c.version > version))
        self.conn.execute(
            update(installments).where(mine, installments.c.version == version).values(active=True)
        )
        restored = replace(
            loan, installments=self._items(loan.id, version), schedule_version=version
        )
        self._loaded[loan.id] = restored
        return restored


_STATE_NAMES = mapping.STATE_COLUMNS
_BILL_NAMES = (
    "bal_principal",
    "bal_interest",
    "bal_fee",
    "bal_penalty",
    *mapping.PERIOD_COLUMNS,
    "lid",
)
"""`SqlLoans.save_bills`' values of a loan left open, in order: its period's columns all
written, as a save writes them from the state (a row the close left with a period number
and no due date reads as no period, and is saved so)."""
_CLOSED_BILL_NAMES = (*_BILL_NAMES[:-1], "status", "closed_on", "lid")
"""The same of a loan whose bill was the last of it: the loan is paid off."""
_SAVE_BILL = _SAVE_LOAN.values(oldest_due=None, accrual_dirty=True)
"""A loan whose whole bill is paid: nothing billed is unpaid, and the row is written."""
_PAID_OFF = LoanStatus.PAID_OFF.value
_PAID_PART_NAMES = ("lid", "ver", "num", "principal", "interest", "fee")
_ALL_STATE = (*_STATE_NAMES, "lid")
_LID = ("lid",)
_row_state = itemgetter(*(_LoanRow._fields.index(name) for name in _STATE_NAMES))
"""A `_LoanRow`'s state columns, in `mapping.STATE_COLUMNS` order."""
_PAID_NAMES = ("lid", "ver", "num", "paid_principal", "paid_interest", "paid_fee")
"""`_PAY_ITEM`'s parameters, in the order of `_changed_items`' paid rows."""


def _same_terms(was: InstallmentState, item: InstallmentState) -> bool:
    """Whether everything but the paid amounts is as it was."""
    return (was.start_date, was.due_date, was.principal, was.interest, was.fee, was.billed) == (
        item.start_date,
        item.due_date,
        item.principal,
        item.interest,
        item.fee,
        item.billed,
    )


def _without_key(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in ("loan_id", "version", "number")}


def _applied_fen(p: StoredPayment) -> dict[str, int]:
    """What the payment settled, by kind, in fen: its stored body and its funder split."""
    values = _applied_values(p.applied)  # most kinds are zero on most payments: not converted
    return {name: to_fen(v) if v else 0 for name, v in zip(_APPLIED, values, strict=True)}


_APPLIED = Applied.__slots__
_applied_values = attrgetter(*_APPLIED)
_APPLIED_KEYS = tuple(sorted((*_APPLIED, "accrued_interest", "accrued_fee")))
_APPLIED_TEXT = "{" + ", ".join(f'"{key}": %d' for key in _APPLIED_KEYS) + "}"
"""`json.dumps(body, sort_keys=True)` of a payment's body of integer fen, as a template:
the same text (keys in order, `json`'s separators, integers as `repr` writes them), without
the encoder's per-call work (a test compares the two)."""
_body_values = itemgetter(*_APPLIED_KEYS)


def _applied_json(p: StoredPayment, applied_fen: dict[str, int]) -> str:
    body = {
        **applied_fen,
        "accrued_interest": to_fen(p.accrued_interest),
        "accrued_fee": to_fen(p.accrued_fee),
    }
    text: str = _APPLIED_TEXT % _body_values(body)
    return text


_PAYMENT_COLUMNS = (
    "loan_id",
    "kind",
    "value_date",
    "amount_fen",
    "idempotency_key",
    "request_hash",
    "status",
    "mode",
    "applied",
    "entry_id",
    "schedule_version_before",
    "created_at",
)
"""The columns `SqlPayments._insert` writes, in its rows' order."""
_PART_COLUMNS = ("payment_id", "number", "principal_fen", "interest_fen", "fee_fen")


class SqlPayments:
    def __init__(self, conn: Connection, posted: Mapping[int, date] | None = None) -> None:
        self.conn = conn
        self._posted = {} if posted is None else posted
        """Business dates of the entries this transaction posted (`SqlLedger`'s)."""

    def _load(self, row: Any) -> StoredPayment:
        body = json.loads(row.applied)
        accrued = (from_fen(body.pop("accrued_interest")), from_fen(body.pop("accrued_fee")))
        applied = Applied(**{k: from_fen(v) for k, v in body.items()})
        parts_rows = self.conn.execute(
            select(payment_parts).where(payment_parts.c.payment_id == row.id)
        )
        parts = tuple(
            InstallmentPart(
                r.number, from_fen(r.principal_fen), from_fen(r.interest_fen), from_fen(r.fee_fen)
            )
            for r in parts_rows
        )
        return StoredPayment(
            id=row.id,
            loan_id=row.loan_id,
            kind=row.kind,
            value_date=row.value_date,
            amount=from_fen(row.amount_fen),
            idempotency_key=row.idempotency_key,
            request_hash=row.request_hash,
            status=row.status,
            applied=applied,
            parts=parts,
            entry_id=row.entry_id,
            schedule_version_before=row.schedule_version_before,
            mode=row.mode,
            accrued_interest=accrued[0],
            accrued_fee=accrued[1],
        )

    def by_key(self, key: str) -> StoredPayment | None:
        row = self.conn.execute(_BY_KEY, {"key": key}).first()
        return None if row is None else self._load(row)

    def get(self, payment_id: int) -> StoredPayment:
        row = self.conn.execute(select(payments).where(payments.c.id == payment_id)).first()
        if row is None:
            raise NotFound(f"no payment {payment_id}", field="payment_id")
        return self._load(row)

    def for_loan(self, loan_id: int) -> Sequence[StoredPayment]:
        query = select(payments).where(payments.c.loan_id == loan_id).order_by(payments.c.id)
        return [self._load(r) for r in self.conn.execute(query)]

    def by_keys(self, keys: Collection[str]) -> dict[str, StoredPayment]:
        found: dict[str, StoredPayment] = {}
        for chunk in chunks(sorted(set(keys))):
            rows = self.conn.execute(_BY_KEYS, {"keys": chunk})
            found.update((row.idempotency_key, self._load(row)) for row in rows)
        return found

    def add(self, payment: StoredPayment) -> int:
        return self.add_many([payment])[0]

    def add_many(self, batch: Sequence[StoredPayment]) -> list[int]:
        """Store payments, their installment parts and their funder splits; ids in order."""
        applied = [_applied_fen(p) for p in batch]
        ids: list[int] = []
        for chunk in chunks(list(zip(batch, applied, strict=True))):
            ids += self._insert(chunk)
        parts = [
            (pid, p.number, *mapping.part_fen(p))
            for pid, payment in zip(ids, batch, strict=True)
            for p in payment.parts
        ]
        insert_rows(self.conn, _INSERT_PARTS, _PART_COLUMNS, parts)
        SubLedger(self.conn).on_payments(
            [
                (pid, p.loan_id, fen, p.entry_id)
                for pid, p, fen in zip(ids, batch, applied, strict=True)
            ],
            self._posted,
        )
        return ids

    def _insert(self, batch: Sequence[tuple[StoredPayment, dict[str, int]]]) -> list[int]:
        """Payment rows, each with what it settled in fen (`_applied_fen`)."""
        created = now()
        rows = [
            (
                payment.loan_id,
                payment.kind,
                payment.value_date,
                to_fen(payment.amount),
                payment.idempotency_key,
                payment.request_hash,
                payment.status,
                payment.mode,
                _applied_json(payment, fen),
                payment.entry_id,
                payment.schedule_version_before,
                created,
            )
            for payment, fen in batch
        ]
        return inserted_ids(self.conn, payments, rows, _PAYMENT_COLUMNS, multi_row=True)

    def later_than(self, payment: StoredPayment) -> Sequence[StoredPayment]:
        query = (
            select(payments)
            .where(
                payments.c.loan_id == payment.loan_id,
                payments.c.id > payment.id,
                payments.c.status == "posted",
            )
            .order_by(payments.c.id)
        )
        return [self._load(r) for r in self.conn.execute(query)]

    def mark_reversed(self, payment_id: int, reversal_entry_id: int) -> None:
        self.conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(status="reversed", reversal_entry_id=reversal_entry_id)
        )
        loan_id = self.conn.execute(
            select(payments.c.loan_id).where(payments.c.id == payment_id)
        ).scalar_one()
        SubLedger(self.conn).on_reversal(payment_id, loan_id, reversal_entry_id)


def line_rows(entry_id: int, postings: Sequence[Posting]) -> list[tuple[Any, ...]]:
    """An entry's journal lines as value tuples in `LINE_COLUMNS` order."""
    return [_line_row(entry_id, p, to_fen(p.amount)) for p in postings]


def _line_row(entry_id: int, p: Posting, fen: int) -> tuple[Any, ...]:
    debit = p.side is Side.DEBIT
    return (entry_id, _CODES[p.account], p.loan_id, p.funder_id, fen if debit else 0,
            0 if debit else fen)  # fmt: skip


LINE_COLUMNS = ("entry_id", "account", "loan_id", "funder_id", "debit_fen", "credit_fen")
"""The `journal_lines` columns a posted line writes, in `line_rows`' order: tuples, not
dicts, as the rows go straight to the driver (`execute_rows`) a few per payment."""
_CODES = {account: account.code for account in Account}
"""Each account's stored code (`Account.code` splits its name at every call)."""
_ENTRY_COLUMNS = ("event", "business_date", "reference", "reverses", "created_at")
_EVENT_TEXT = {event: event.value for event in EventType}
"""Enum members' values by a dict lookup: the enum's `.value` property costs five times it."""


class SqlLedger:
    def __init__(self, conn: Connection, posted: dict[int, date] | None = None) -> None:
        self.conn = conn
        self.posted = {} if posted is None else posted
        """Entry id → business date of each entry posted here: the payments posted with them
        date their funder splits from it instead of reading the entries back."""

    def post(self, entry: JournalEntry) -> int:
        return self.post_many([entry])[0]

    def post_many(self, entries: Sequence[JournalEntry]) -> list[int]:
        """Post entries with one multi-row insert per table; their ids, in order."""
        ids: list[int] = []
        created = now()
        for chunk in chunks(entries):
            headers = [
                (
                    _EVENT_TEXT[entry.event],
                    entry.business_date,
                    entry.reference,
                    entry.reverses,
                    created,
                )
                for entry in chunk
            ]
            ids += inserted_ids(self.conn, journal_entries, headers, _ENTRY_COLUMNS, multi_row=True)
        self.posted.update(zip(ids, (entry.business_date for entry in entries), strict=True))
        lines = [
            row
            for entry_id, entry in zip(ids, entries, strict=True)
            for row in line_rows(entry_id, entry.postings)
        ]
        insert_rows(self.conn, _INSERT_LINES, LINE_COLUMNS, lines)
        return ids

    def get(self, entry_id: int) -> JournalEntry:
        head = self.conn.execute(
            select(journal_entries).where(journal_entries.c.id == entry_id)
        ).first()
        if head is None:
            raise NotFound(f"no journal entry {entry_id}", field="entry_id")
        rows = self.conn.execute(select(journal_lines).where(journal_lines.c.entry_id == entry_id))
        postings = tuple(_posting(r) for r in rows)
        return JournalEntry(
            EventType(head.event), head.business_date, head.reference, postings, head.reverses
        )


def _posting(row: Any) -> Posting:
    account = ACCOUNTS_BY_CODE[row.account]
    if row.debit_fen and row.credit_fen:
        raise InvariantViolation(f"journal line {row.id} is both debit and credit")
    side = Side.DEBIT if row.debit_fen else Side.CREDIT
    amount = from_fen(row.debit_fen or row.credit_fen)
    return Posting(account, side, amount, row.loan_id, row.funder_id)


class SqlCalendar:
    """The business calendar as one unit of work sees it: the last closed day is read once
    (checking a payment's date and reading its loan both ask)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._last: tuple[date | None] | None = None

    def last_closed(self) -> date | None:
        if self._last is None:
            self._last = (last_closed(self.conn),)
        return self._last[0]


class SqlFundingPlans:
    """The funding port of a unit of work: plans are written on the booking's connection,
    re-checked under the funders' lock (the ratio rules too, given `policy_on`)."""

    def __init__(
        self, conn: Connection, engine: Engine, policy_on: Callable[[date], Policy] | None = None
    ) -> None:
        self.conn = conn
        self.engine = engine
        self.policy_on = policy_on

    def record(self, loan_id: int, plan: PlanTerms) -> None:
        self.record_many([(loan_id, plan)])

    def record_many(self, plans: Sequence[tuple[int, PlanTerms]]) -> None:
        rows = [(loan_id, p.shares, p.guarantee_fee_rates) for loan_id, p in plans]
        SqlFunding(self.engine).record_plans(self.conn, rows, self.policy_on)


class SqlLoanProfiles:
    """The profiles port of a unit of work: one row per loan, on the booking's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(self, loan_id: int, profile: LoanProfile) -> None:
        self.record_many([(loan_id, profile)])

    def record_many(self, profiles: Sequence[tuple[int, LoanProfile]]) -> None:
        rows = [
            (loan_id, p.decision_id, p.channel, p.province, p.purpose, p.pd_origination,
             p.lead_funder_id)
            for loan_id, p in profiles
        ]  # fmt: skip
        execute_rows(self.conn, _INSERT_PROFILES, _PROFILE_COLUMNS, rows)


_INSERT_PROFILES = insert(loan_profiles)
_PROFILE_COLUMNS = ("loan_id", "decision_id", "channel", "province", "purpose",
                    "pd_origination", "lead_funder_id")  # fmt: skip


class SqlUnitOfWork:
    """One database transaction; leaving the block without `commit()` rolls everything back.

    `plan_policy` gives the co-lending policy in force on a date (a funding desk's
    `policy_on`): the funding plans booked in the unit are then re-checked against the ratio
    rules (2.2, 2.3) under the funders' lock, not only against the quotas, so two bookings
    racing for the last of a bank's limit cannot both take it."""

    def __init__(self, engine: Engine, plan_policy: Callable[[date], Policy] | None = None) -> None:
        self.engine = engine
        self.plan_policy = plan_policy

    def __enter__(self) -> SqlUnitOfWork:
        self.conn = self.engine.connect()
        self._tx = self.conn.begin()
        self.calendar = SqlCalendar(self.conn)
        self.loans = SqlLoans(self.conn, self.calendar.last_closed)
        self.ledger = SqlLedger(self.conn)
        self.payments = SqlPayments(self.conn, self.ledger.posted)
        self.funding = SqlFundingPlans(self.conn, self.engine, self.plan_policy)
        self.profiles = SqlLoanProfiles(self.conn)
        self.loan_settlements = SqlLoanSettlements(self.conn)
        return self

    def commit(self) -> None:
        self._tx.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tx.is_active:
            self._tx.rollback()
        self.conn.close()


__all__ = ["SqlFundingPlans", "SqlLoanProfiles", "SqlUnitOfWork"]
