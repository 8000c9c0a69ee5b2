"""Read models over the ledger and the loan book: trial balance, reconciliation, delinquency.

These read whole tables, never run inside close of business, and return plain records that
the CLI and API render.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, text

from lendstack.core.money import ZERO, from_fen
from lendstack.servicing.domain.delinquency import DEFAULT_BUCKETS, RiskClass
from lendstack.servicing.domain.ledger import Account
from lendstack.storage.repositories import ACCOUNTS_BY_CODE
from lendstack.storage.subledger import Mismatch, reconcile_funders


@dataclass(frozen=True, slots=True)
class TrialBalanceLine:
    account: Account
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True, slots=True)
class TrialBalance:
    lines: tuple[TrialBalanceLine, ...]

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit

    def balance(self, account: Account) -> Decimal:
        """Net balance on the account's normal side."""
        for line in self.lines:
            if line.account is account:
                net = line.debit - line.credit
                return net if account.debit_normal else -net
        return ZERO


def trial_balance(conn: Connection) -> TrialBalance:
    """Net debit or credit per account, as a trial balance shows it."""
    rows = conn.execute(
        text(
            "SELECT account, SUM(debit_fen), SUM(credit_fen) FROM journal_lines"
            " GROUP BY account ORDER BY account"
        )
    )
    return trial_balance_of((str(code), int(d or 0), int(c or 0)) for code, d, c in rows)


def trial_balance_of(sums: Iterable[tuple[str, int, int]]) -> TrialBalance:
    """The trial balance of (account code, debit fen, credit fen) sums, in account order."""
    lines = []
    for code, debit, credit in sums:
        net = debit - credit
        lines.append(
            TrialBalanceLine(ACCOUNTS_BY_CODE[code], from_fen(max(net, 0)), from_fen(max(-net, 0)))
        )
    return TrialBalance(tuple(lines))


@dataclass(frozen=True, slots=True)
class Difference:
    check: str
    expected: Decimal
    actual: Decimal

    @property
    def amount(self) -> Decimal:
        return self.actual - self.expected


# General-ledger account -> the loan sub-ledger sum that must equal it.
_SUBLEDGER = {
    Account.PRINCIPAL_RECEIVABLE: "SUM(bal_principal)",
    Account.INTEREST_RECEIVABLE: "SUM(bal_interest)",
    Account.FEE_RECEIVABLE: "SUM(bal_fee)",
    Account.PENALTY_RECEIVABLE: "SUM(bal_penalty)",
    Account.BORROWER_CREDIT: "SUM(bal_credit)",
    Account.INTEREST_SUSPENSE: (
        "SUM(CASE WHEN non_accrual = TRUE AND status = 'active'"
        " THEN bal_interest + bal_fee + bal_penalty ELSE 0 END)"
    ),
}


def _scalar(conn: Connection, sql: str) -> Decimal:
    return from_fen(int(conn.execute(text(sql)).scalar() or 0))


def reconcile(conn: Connection) -> list[Difference]:
    """Every way the books can disagree, to the fen; an empty list means they tie.

    Includes the funder sub-ledgers: loans to funders' positions, positions to their flows,
    and each bank's GL balances to its flows of closed dates."""
    unbalanced = conn.execute(
        text(
            "SELECT entry_id, SUM(debit_fen), SUM(credit_fen) FROM journal_lines"
            " GROUP BY entry_id HAVING SUM(debit_fen) <> SUM(credit_fen)"
        )
    )
    entries = [(int(e), int(d), int(c)) for e, d, c in unbalanced]
    return reconcile_from(conn, trial_balance(conn), entries, reconcile_funders(conn))


def reconcile_from(
    conn: Connection,
    tb: TrialBalance,
    unbalanced: Iterable[tuple[int, int, int]],
    funders: Iterable[Mismatch],
) -> list[Difference]:
    """`reconcile`'s differences, given the journal's trial balance, its unbalanced entries
    (id, debit fen, credit fen) and the funder sub-ledgers' mismatches, however they were
    summed (`storage.running_reconcile` carries them from one check to the next); the checks
    against the loan book are read here."""
    out: list[Difference] = []
    if not tb.balanced:
        out.append(Difference("trial balance", tb.total_debit, tb.total_credit))
    for entry_id, debit, credit in unbalanced:
        out.append(Difference(f"entry {entry_id}", from_fen(debit), from_fen(credit)))
    # one pass over the loans for every sub-ledger total
    totals = conn.execute(text(f"SELECT {', '.join(_SUBLEDGER.values())} FROM loans")).one()
    for (account, _), total in zip(_SUBLEDGER.items(), totals, strict=True):
        loans_total = from_fen(int(total or 0))
        if loans_total != tb.balance(account):
            out.append(
                Difference(f"{account.value} (loans vs GL)", tb.balance(account), loans_total)
            )
    out += _installments_vs_loans(conn)
    out += _allowance_vs_last_ecl_run(conn, tb)
    out += [Difference(m.what, m.expected, m.found) for m in funders]
    return out


def _installments_vs_loans(conn: Connection) -> list[Difference]:
    """Each open loan's principal equals the unpaid principal of its current schedule."""
    rows = conn.execute(
        text(
            "SELECT l.id, l.bal_principal, COALESCE(SUM(i.principal_fen - i.paid_principal_fen), 0)"
            " FROM loans l LEFT JOIN installments i ON i.loan_id = l.id"
            " AND i.version = l.schedule_version WHERE l.status = 'active'"
            " GROUP BY l.id, l.bal_principal"
            " HAVING l.bal_principal <> COALESCE(SUM(i.principal_fen - i.paid_principal_fen), 0)"
        )
    )
    return [
        Difference(f"loan {lid} principal vs schedule", from_fen(int(s)), from_fen(int(b)))
        for lid, b, s in rows
    ]


def _allowance_vs_last_ecl_run(conn: Connection, tb: TrialBalance) -> list[Difference]:
    """The loan loss allowance (1309) is the total of the last posted ECL run, or zero, less
    what NPL sales released of that run's allowance since it was posted."""
    posted = _scalar(
        conn,
        "SELECT r.total_fen - COALESCE((SELECT SUM(s.allowance_released_fen) FROM npl_sales s"
        " WHERE s.ecl_run_id = r.id), 0) FROM ecl_runs r WHERE r.posted_at IS NOT NULL"
        " ORDER BY r.as_of DESC LIMIT 1",
    )
    held = tb.balance(Account.ALLOWANCE)
    if posted == held:
        return []
    return [Difference(f"{Account.ALLOWANCE.value} (last posted ECL run vs GL)", posted, held)]


@dataclass(frozen=True, slots=True)
class DelinquencyRow:
    bucket: str
    risk_class: RiskClass
    loans: int
    principal: Decimal


def delinquency(conn: Connection, day: date) -> tuple[DelinquencyRow, ...]:
    """The delinquency and classification table as of a closed business date."""
    rows = conn.execute(
        text(
            "SELECT bucket, risk_class, SUM(loans), SUM(principal_fen) FROM portfolio_snapshots"
            " WHERE business_date = :day GROUP BY bucket, risk_class ORDER BY bucket, risk_class"
        ),
        {"day": day},
    )
    labels = DEFAULT_BUCKETS.labels
    return tuple(
        DelinquencyRow(labels[int(b)], RiskClass(c), int(n), from_fen(int(p)))
        for b, c, n, p in rows
    )
