"""Relational schema. Money is integer fen; dates the set-based close needs are epoch days.

Epoch-day integers (days since 1970-01-01) let close of business do date arithmetic with plain
integer SQL that runs the same on SQLite and PostgreSQL, and fast. Human-facing dates are
kept as DATE columns alongside.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big books.
Id = BigInteger().with_variant(Integer, "sqlite")
Fen = BigInteger

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _fen(name: str) -> Column[int]:
    return Column(name, Fen, nullable=False, default=0, server_default="0")


loans = Table(
    "loans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reference", String(80), unique=True),
    Column("product_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    # contract snapshot
    Column("principal_fen", Fen, nullable=False),
    Column("annual_rate", String(24), nullable=False),
    Column("term_months", Integer, nullable=False),
    Column("method", String(24), nullable=False),
    Column("disbursement_date", Date, nullable=False),
    Column("anchor_date", Date, nullable=False),
    Column("day_count", String(12), nullable=False),
    Column("rounding", String(12), nullable=False),
    Column("grace_days", Integer, nullable=False),
    Column("penalty_multiplier", String(12), nullable=False),
    Column("penalty_rate_e8", BigInteger, nullable=False),  # annual penalty rate × 1e8, for SQL
    Column("year_days", Integer, nullable=False),
    Column("waterfall", String(200), nullable=False),
    Column("non_accrual_dpd", Integer, nullable=False),
    Column("charge_off_dpd", Integer, nullable=False),
    Column("write_off_days", Integer, nullable=True),  # after charge-off; NULL: never
    Column("fee_rate", String(24), nullable=False),
    Column("upfront_fee_rate", String(24), nullable=False),
    Column("prepayment_fee_rate", String(24), nullable=False),
    # loan sub-ledger
    _fen("bal_principal"),
    _fen("bal_interest"),
    _fen("bal_fee"),
    _fen("bal_penalty"),
    _fen("bal_credit"),
    # the period being accrued
    Column("period_no", Integer),
    Column("period_start", Integer),
    Column("period_due", Integer),
    _fen("period_interest"),
    _fen("period_accrued"),
    # Written by servicing since the last close: its period_accrued is exact as it stands, not
    # the period's share at that close (storage.cob.accrue; 0023_deferred_accrual).
    Column("accrual_dirty", Boolean, nullable=False, default=False, server_default="0"),
    # delinquency
    Column("oldest_due", Integer),
    Column("dpd", Integer, nullable=False, default=0, server_default="0"),
    Column("bucket", Integer, nullable=False, default=0, server_default="0"),
    Column("risk_class", String(16), nullable=False),
    Column("non_accrual", Boolean, nullable=False, default=False, server_default="0"),
    Column("schedule_version", Integer, nullable=False, default=1, server_default="1"),
    _fen("charged_off_fen"),
    _fen("recovered_fen"),
    Column("closed_on", Date),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Every close-of-business statement starts from one of these, so paid-off and charged-off
    # loans, however many accumulate, cost the nightly close nothing.
    Index("ix_loans_status_period_due", "status", "period_due"),
    Index("ix_loans_status_oldest_due", "status", "oldest_due"),
    Index("ix_loans_status_dpd_bucket", "status", "dpd", "bucket"),
    Index("ix_loans_status_non_accrual", "status", "non_accrual"),
    # The accrual walks the active loans in id order; the write-off step reads only the
    # charged-off loans due (0018_cob_speed).
    Index("ix_loans_status_id", "status", "id"),
    Index("ix_loans_status_write_off", "status", "write_off_days", "closed_on"),
    # The snapshot groups the active loans by product, bucket and class: walked in that order
    # it needs no sort (0020_snapshot_order). Its entries change only with a loan's status,
    # bucket or class, never with the daily balances.
    Index("ix_loans_status_snapshot", "status", "product_id", "bucket", "risk_class"),
    Index("ix_loans_disbursement_date", "disbursement_date"),
    Index(
        "ix_loans_accrual_dirty",
        "id",
        sqlite_where=text("accrual_dirty"),
        postgresql_where=text("accrual_dirty"),
    ),
    Index(
        "ix_loans_holding_credit",
        "status",
        "id",
        sqlite_where=text("bal_credit > 0"),
        postgresql_where=text("bal_credit > 0"),
    ),
    # Free space on each page lets PostgreSQL rewrite a loan row in place (a HOT update)
    # when the daily accrual changes only unindexed balance columns.
    postgresql_with={"fillfactor": "60"},
)

installments = Table(
    "installments",
    metadata,
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("start_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("due_day", Integer, nullable=False),
    Column("principal_fen", Fen, nullable=False),
    Column("interest_fen", Fen, nullable=False),
    Column("fee_fen", Fen, nullable=False),
    _fen("paid_principal_fen"),
    _fen("paid_interest_fen"),
    _fen("paid_fee_fen"),
    Column("billed", Boolean, nullable=False, default=False, server_default="0"),
    Column("active", Boolean, nullable=False, default=True, server_default="1"),
    Index("ix_installments_due_day", "due_day"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("value_date", Date, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("idempotency_key", String(128), unique=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("mode", String(24)),
    Column("applied", Text, nullable=False),  # JSON: component -> fen
    Column("entry_id", Id, ForeignKey("journal_entries.id"), nullable=False),
    Column("reversal_entry_id", Id, ForeignKey("journal_entries.id")),
    Column("schedule_version_before", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

payment_parts = Table(
    "payment_parts",
    metadata,
    Column("payment_id", Id, ForeignKey("payments.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("principal_fen", Fen, nullable=False),
    Column("interest_fen", Fen, nullable=False),
    Column("fee_fen", Fen, nullable=False),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event", String(32), nullable=False),
    Column("business_date", Date, nullable=False, index=True),
    Column("reference", String(120), nullable=False, unique=True),
    Column("reverses", Id, ForeignKey("journal_entries.id")),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entry_id", Id, ForeignKey("journal_entries.id"), nullable=False, index=True),
    Column("account", String(8), nullable=False),
    Column("loan_id", Id),
    Column("funder_id", String(64)),
    _fen("debit_fen"),
    _fen("credit_fen"),
    # No index on account (0022): sixteen accounts, the busiest a third of the lines, so its
    # readers (trial balance, the regulator's principal balance) read as fast in table order,
    # and every line posted paid for an entry in it.
)

cob_steps = Table(
    "cob_steps",
    metadata,
    # step first: "the last closed date" is then an index lookup, whatever the history length
    Column("step", String(24), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("rows", BigInteger, nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=False),
)

loan_events = Table(
    "loan_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, nullable=False, index=True),
    Column("business_date", Date, nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # bucket | class | status
    Column("old", String(16), nullable=False),
    Column("new", String(16), nullable=False),
    UniqueConstraint("loan_id", "business_date", "kind"),
)

portfolio_snapshots = Table(
    "portfolio_snapshots",
    metadata,
    Column("business_date", Date, primary_key=True),
    Column("product_id", String(64), primary_key=True),
    Column("bucket", Integer, primary_key=True),
    Column("risk_class", String(16), primary_key=True),
    Column("loans", BigInteger, nullable=False),
    _fen("principal_fen"),
    _fen("interest_fen"),
    _fen("fee_fen"),
    _fen("penalty_fen"),
)


# --- underwriting -------------------------------------------------------------------------

decision_log = Table(
    "decision_log",
    metadata,
    # The append-only, hash-chained audit log: one row per decision or review resolution.
    # `seq` orders the chain; `record_json` is the canonical JSON the hash covers, with PII
    # replaced by its AES-GCM ciphertext, so verification needs no key.
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # decision | review
    Column("decision_id", String(40), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("application_date", Date, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("borrower_key", String(64), nullable=False),
    Column("offer_amount_fen", Fen, nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("request_sha256", String(64), nullable=True),
    Column("record_json", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("channel", "idempotency_key"),
    Index("ix_decision_log_decision", "decision_id", "kind"),
    Index("ix_decision_log_borrower", "borrower_key", "application_date"),
    Index("ix_decision_log_date", "application_date"),
)

rule_pack_texts = Table(
    "rule_pack_texts",
    metadata,
    # Every rule pack a decision was made under, by content hash, so replay re-runs the exact
    # text even after the file in version control has moved on.
    Column("sha256", String(64), primary_key=True),
    Column("pack_id", String(64), nullable=False),
    Column("version", String(32), nullable=False),
    Column("text", Text, nullable=False),
)

review_queue = Table(
    "review_queue",
    metadata,
    Column("decision_id", String(40), primary_key=True),
    Column("channel", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("reasons", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("resolution", String(16), nullable=True),  # APPROVE | COUNTER_OFFER | DECLINE
    Column("note", Text, nullable=True),
    Index("ix_review_queue_status", "status", "opened_at"),
)

rejected_inputs = Table(
    "rejected_inputs",
    metadata,
    # Invalid applications are counted, not decided: which fields were wrong, never the payload.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),  # api | batch
    Column("channel", String(64), nullable=True),
    Column("fields", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key_sha256", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),
    Column("role", String(16), nullable=False),
    Column("channel", String(64), nullable=True),
    Column("partner_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

decision_log_head = Table(
    "decision_log_head",
    metadata,
    # One row (id=1): the last decision_log entry, rewritten in the same transaction as every
    # append. Deleting the log's tail without also rewriting this row is caught by verify.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


# --- funding ------------------------------------------------------------------------------

funders = Table(
    "funders",
    metadata,
    # A co-lending partner (or the platform's own balance sheet). `definition` is the partner
    # file as canonical JSON, rebuilt into a `Funder` by the pure parser on every read, so the
    # validation rules live in one place and new partner fields need no migration.
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("definition", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, default=1, server_default="1"),
)

funding_plans = Table(
    "funding_plans",
    metadata,
    # One row per funder share of a booked loan; a loan's shares sum to exactly 1.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("funder_id", String(64), ForeignKey("funders.id"), primary_key=True),
    Column("share", String(16), nullable=False),  # decimal string, e.g. "0.3000"
    # The funder's annual guarantee fee priced into the loan (decision-time value, 0 if none):
    # the guarantor's part of each fee collected is split off by it (`SubLedger`).
    Column("guarantee_fee_rate", String(16), nullable=False, server_default="0"),
    Index("ix_funding_plans_funder_id", "funder_id"),
)

funder_positions = Table(
    "funder_positions",
    metadata,
    # Each funder's stake in a co-funded loan now: its part of the outstanding principal and
    # its share of future income (changed only by a guarantee payout or a buyback). Updated in
    # the same transaction as the loan, so the positions always add up to its principal.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("funder_id", String(64), ForeignKey("funders.id"), primary_key=True),
    _fen("principal_fen"),
    Column("share_units", Integer, nullable=False),  # share in force × 10,000
    Index("ix_funder_positions_funder_id", "funder_id"),
)

funder_flows = Table(
    "funder_flows",
    metadata,
    # The funders' sub-ledgers: every cash flow of a co-funded loan split into each funder's
    # part (largest remainder, to the fen). `source` names the event split ("payment:17",
    # "reversal:17", "disbursement:5", "charge_off:5", ...); a source is split once.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("business_date", Date, nullable=False),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False),
    Column("funder_id", String(64), ForeignKey("funders.id"), nullable=False),
    Column("flow", String(16), nullable=False),
    Column("amount_fen", Fen, nullable=False),  # signed: a reversal's parts are negative
    Column("source", String(60), nullable=False),
    UniqueConstraint("source", "funder_id", "flow"),
    # Flows are read by date (one, or the few since a close) for every funder or one: a
    # single date-first index serves both, where a date index and a funder-first one cost
    # two entries a row. Nothing reads flows by loan but the whole-book reconciliation, which
    # SQLite serves with an automatic index of its own (migration 0022).
    Index("ix_funder_flows_business_date_funder_id", "business_date", "funder_id"),
    # The funders' allocations (disbursement flows) are summed at booking's re-check and at
    # the close, and a bank's guarantee payouts at the close: partial indexes keep those to
    # the few rows of their kind, and the payments' parts (about five rows a payment, the
    # bulk of the table) write no entry in them (migration 0021).
    Index(
        "ix_funder_flows_disbursements",
        "funder_id",
        "business_date",
        sqlite_where=text("flow = 'disbursement'"),
        postgresql_where=text("flow = 'disbursement'"),
    ),
    Index(
        "ix_funder_flows_guarantees",
        "funder_id",
        sqlite_where=text("flow = 'guarantee'"),
        postgresql_where=text("flow = 'guarantee'"),
    ),
)

funder_exposures = Table(
    "funder_exposures",
    metadata,
    # Each funder's exposure at its last close, written set-based by the close's funding step:
    # booking re-checks a plan from these rows plus the flows since `closed_on` (O(funders),
    # not O(book)). A funder without a row (no close yet) counts every flow it has.
    Column("funder_id", String(64), ForeignKey("funders.id"), primary_key=True),
    Column("closed_on", Date, nullable=True),
    _fen("balance_fen"),  # co-lent principal of open loans at the close
    _fen("allocated_fen"),  # every disbursement part up to the close (total quota)
    # The id of the last funder flow `balance_fen` includes, when the close carried it from
    # the flows written since (`close_exposures`); NULL: not known, the next close sums the
    # positions (0024_carried_exposures).
    Column("flows_through", BigInteger, nullable=True),
)


# --- risk ---------------------------------------------------------------------------------

loan_profiles = Table(
    "loan_profiles",
    metadata,
    # The analytics dimensions of a loan booked from a decision, written in the booking's
    # transaction (`LoanProfile`). Loans booked without one (synthetic books, `loan book`)
    # have no row; the panel then says "unknown". `pd_origination` is the model's PD at
    # decision time: a score, not money, so a float (DESIGN.md: floats are fine for scores).
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("decision_id", String(40), nullable=True),
    Column("channel", String(64), nullable=False),
    Column("province", String(64), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("pd_origination", Double, nullable=True),
    Column("lead_funder_id", String(64), nullable=True),  # largest share of the funding plan
)

loan_month_ends = Table(
    "loan_month_ends",
    metadata,
    # The loan-month panel of `lendstack.risk.panel`, column for column: one row per loan on
    # the books at a month-end, plus its CO/PO row the month it leaves. Written by the close's
    # month_end step; exporting the panel is a plain SELECT.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("month_end", Date, primary_key=True),
    Column("origination_month", Date, nullable=False),
    Column("months_on_book", Integer, nullable=False),
    Column("state", String(4), nullable=False),  # M0 … M5, M6+, CO, PO
    Column("dpd", Integer, nullable=False),
    Column("principal_fen", Fen, nullable=False),
    Column("risk_class", String(16), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("funder", String(64), nullable=False),
    Column("province", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("first_payment_default", Boolean, nullable=False),
    Index("ix_loan_month_ends_month_end", "month_end"),
    # The month-end's reversed-payoff check reads only the payoff rows (0019_close_speed).
    Index(
        "ix_loan_month_ends_paid_off",
        "loan_id",
        "month_end",
        sqlite_where=text("state = 'PO'"),
        postgresql_where=text("state = 'PO'"),
    ),
)

first_payment_defaults = Table(
    "first_payment_defaults",
    metadata,
    # The business date on which a loan's installment 1 first stood at 30+ DPD, recorded by the
    # close as it happens, so a first payment made 35 days late and cured before the month-end
    # still counts as a first-payment default.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("business_date", Date, nullable=False),
)

# Loans that left the books in a month are found by the day they closed, not by a scan of
# every paid-off and charged-off loan ever.
Index("ix_loans_closed_on", loans.c.closed_on)


# --- ECL ----------------------------------------------------------------------------------

ecl_runs = Table(
    "ecl_runs",
    metadata,
    # One IFRS 9 allowance measurement of the book as of a closed business date, under one
    # config (and transition matrix), by content hash. A run is the record: measuring the
    # same date under the same inputs again returns it. `posted_at` marks the run whose
    # allowance the ledger carries for its date (at most one per date); `entry_id` is the
    # journal entry that moved 1309 to it (none when the allowance did not change).
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("as_of", Date, nullable=False),
    Column("config_id", String(64), nullable=False),
    Column("config_sha256", String(64), nullable=False),
    Column("matrix_sha256", String(64), nullable=False, default="", server_default=""),
    Column("result_sha256", String(64), nullable=False),
    Column("loans", BigInteger, nullable=False),
    _fen("ead_fen"),
    _fen("total_fen"),
    _fen("stage1_fen"),
    _fen("stage2_fen"),
    _fen("stage3_fen"),
    Column("stage1_loans", BigInteger, nullable=False),
    Column("stage2_loans", BigInteger, nullable=False),
    Column("stage3_loans", BigInteger, nullable=False),
    Column("summary_json", Text, nullable=False),
    Column("entry_id", Id, ForeignKey("journal_entries.id")),
    Column("posted_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("as_of", "config_sha256", "matrix_sha256"),
    Index(
        "ix_ecl_runs_posted_as_of",
        "as_of",
        unique=True,
        sqlite_where=text("posted_at IS NOT NULL"),
        postgresql_where=text("posted_at IS NOT NULL"),
    ),
)

ecl_run_loans = Table(
    "ecl_run_loans",
    metadata,
    # Each loan's stage and allowance in a run: the roll-forward matches runs loan by loan.
    Column("run_id", Id, ForeignKey("ecl_runs.id"), primary_key=True),
    Column("loan_id", Id, primary_key=True),
    Column("stage", Integer, nullable=False),
    Column("causes", Integer, nullable=False),
    _fen("ead_fen"),
    _fen("ecl_fen"),
)


# --- early warning ------------------------------------------------------------------------

risk_alerts = Table(
    "risk_alerts",
    metadata,
    # One early-warning alert (lendstack.risk.alerts) by its stable id, "<metric>:<period>"
    # plus ":<partner>" for headroom, so evaluating a month-end again adds no row. The row
    # keeps the severest version seen: a re-run that raises the severity rewrites it (and
    # `updated_at`); `first_raised_at` never changes. `measured` and `threshold` are the
    # floats' repr (exact round trip); `cohorts` a JSON list of ISO months; `loans` JSON
    # {"ids": [first MAX_LOAN_IDS], "count": n}; `alert_json` the alert's `as_json()`.
    Column("id", String(200), primary_key=True),
    Column("metric", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("period", Date, nullable=False),
    Column("subject", String(128)),
    Column("measured", Text, nullable=False),
    Column("threshold", Text, nullable=False),
    Column("cohorts", Text, nullable=False),
    Column("loans", Text, nullable=False),
    Column("alert_json", Text, nullable=False),
    Column("first_raised_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_risk_alerts_period", "period"),
)


# --- NPL sale -----------------------------------------------------------------------------

npl_portfolios = Table(
    "npl_portfolios",
    metadata,
    # A named package of non-performing loans (docs/npl-sale.md). `criteria_json` is the
    # eligibility the loans were selected under; the balances are the tape's totals at
    # packaging. `status` is open until the portfolio is sold.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("business_date", Date, nullable=False),
    Column("status", String(16), nullable=False),  # open | sold
    Column("criteria_json", Text, nullable=False),
    Column("loans", BigInteger, nullable=False),
    _fen("principal_fen"),
    _fen("interest_fen"),
    _fen("fee_fen"),
    _fen("penalty_fen"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

npl_portfolio_loans = Table(
    "npl_portfolio_loans",
    metadata,
    # One loan of a portfolio with its claim at packaging (fen). `sale_price_fen` and
    # `allowance_fen` are its part of the price and the allowance released, set by the sale.
    Column("portfolio_id", Id, ForeignKey("npl_portfolios.id"), primary_key=True),
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("status", String(16), nullable=False),  # the loan's status when packaged
    _fen("principal_fen"),
    _fen("interest_fen"),
    _fen("fee_fen"),
    _fen("penalty_fen"),
    Column("months_since_default", Integer, nullable=False),
    Column("sale_price_fen", Fen),
    Column("allowance_fen", Fen),
    Index("ix_npl_portfolio_loans_loan_id", "loan_id"),
)

npl_sales = Table(
    "npl_sales",
    metadata,
    # The sale of one portfolio to one allowlisted buyer: the journal entry that derecognised
    # the loans, the allowance it released from posted ECL run `ecl_run_id` (storage/reports.py
    # and ecl_runs.py net it off that run's total), and the loss (+) or gain (-) on sale.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("portfolio_id", Id, ForeignKey("npl_portfolios.id"), nullable=False, unique=True),
    Column("buyer_id", String(64), nullable=False),
    Column("business_date", Date, nullable=False),
    _fen("price_fen"),
    _fen("carrying_fen"),
    _fen("allowance_released_fen"),
    Column("ecl_run_id", Id, ForeignKey("ecl_runs.id")),
    Column("loss_fen", Fen, nullable=False),
    Column("proceeds_json", Text, nullable=False),
    Column("entry_id", Id, ForeignKey("journal_entries.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

npl_sold_loans = Table(
    "npl_sold_loans",
    metadata,
    # The register of sold loans: one row per loan, ever (the primary key is what makes a
    # second sale impossible), with the pilot's no-resale flag the buyer is bound by.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("sale_id", Id, ForeignKey("npl_sales.id"), nullable=False),
    Column("buyer_id", String(64), nullable=False),
    Column("sold_on", Date, nullable=False),
    Column("no_resale", Boolean, nullable=False),
)


# --- collections --------------------------------------------------------------------------

collection_contacts = Table(
    "collection_contacts",
    metadata,
    # The audit log of collection contacts: every attempt recorded, allowed or refused by the
    # rule pack (`allowed` false and `reasons` a JSON list of {reason, rule_id, detail}).
    # `local_day`/`local_time` are the debtor's wall clock (the pack's timezone), which the
    # per-day call limit and the quiet hours are about; `contacted_at` is the instant in UTC.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False),
    Column("contacted_at", DateTime(timezone=True), nullable=False),
    Column("local_day", Date, nullable=False),
    Column("local_time", String(5), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("party", String(16), nullable=False),
    Column("number", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("consent", Boolean, nullable=False),
    Column("message", Text, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("rule_pack", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_collection_contacts_local_day_loan_id", "local_day", "loan_id"),
    Index("ix_collection_contacts_loan_id", "loan_id"),
)

promises_to_pay = Table(
    "promises_to_pay",
    metadata,
    # A debtor's promise to pay `amount_fen` by `due_date`, from `promised_on`. Close of
    # business resolves it (status open -> kept | broken, `paid_fen` what was paid in the
    # window, `resolved_on` the business date); `due_day` is the epoch day for set-based SQL.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False, index=True),
    Column("amount_fen", Fen, nullable=False),
    Column("promised_on", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("due_day", Integer, nullable=False),
    Column("status", String(8), nullable=False),
    _fen("paid_fen"),
    Column("resolved_on", Date),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_promises_to_pay_status_due_day", "status", "due_day"),
)


# --- use of funds -------------------------------------------------------------------------

funds_transactions = Table(
    "funds_transactions",
    metadata,
    # Debits from a loan's disbursement account, as the feed (file or API) delivered them
    # (lendstack.risk.surveillance). The feed's transaction id is the key: delivering the
    # same transaction again adds nothing; the same id with other content is a conflict.
    # `request_sha256` is the hash of the canonical transaction, for that comparison.
    Column("transaction_id", String(64), primary_key=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("category", String(32), nullable=False),
    Column("source", String(8), nullable=False),  # file | api
    Column("request_sha256", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_funds_transactions_loan_id", "loan_id"),
)

funds_misuse_flags = Table(
    "funds_misuse_flags",
    metadata,
    # One row per loan whose funds reached a forbidden merchant category within the pack's
    # window: its first offending transaction. `borrower_key` (the decision log's pseudonym,
    # via loan_profiles.decision_id) lets the decision engine find the borrower's flags on the
    # next application. `penalty_rate` / `penalty_applied_at` are set when servicing applies
    # the misuse penalty rate to the loan.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("borrower_key", String(64)),
    Column("transaction_id", String(64), nullable=False),
    Column("category", String(32), nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("disbursement_date", Date, nullable=False),
    Column("days_after", Integer, nullable=False),
    Column("offending", Integer, nullable=False),
    Column("flagged_on", Date, nullable=False),
    Column("pack_id", String(64), nullable=False),
    Column("pack_version", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("penalty_rate", String(24)),
    Column("penalty_applied_at", DateTime(timezone=True)),
    Index("ix_funds_misuse_flags_borrower_key", "borrower_key"),
)


# --- settlements --------------------------------------------------------------------------

loan_settlements = Table(
    "loan_settlements",
    metadata,
    # A negotiated settlement (`servicing.domain.settlement`): the loan closed on
    # `business_date` for `amount_fen` against a payoff of `payoff_fen`, the rest forgiven by
    # kind. The cash is the settlement payment `payment_id`; a loan settles at most once.
    Column("loan_id", Id, ForeignKey("loans.id"), primary_key=True),
    Column("payment_id", Id, ForeignKey("payments.id"), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("payoff_fen", Fen, nullable=False),
    Column("amount_fen", Fen, nullable=False),
    Column("waived_penalty_fen", Fen, nullable=False),
    Column("waived_interest_fen", Fen, nullable=False),
    Column("waived_fee_fen", Fen, nullable=False),
    Column("waived_principal_fen", Fen, nullable=False),
)


# --- restructures -------------------------------------------------------------------------

loan_restructures = Table(
    "loan_restructures",
    metadata,
    # A loan restructured (re-aged) on `business_date` (`servicing.domain.restructure`): what
    # was capitalised or waived, the new terms, and the observation period that holds its
    # class at `floor_class` or worse until `observe_until_day` has passed AND `on_time`
    # consecutive installments reached `on_time_required` (close of business, classification
    # step). `status`: observing | released | superseded (restructured again) | ended (the
    # loan left the books while observed). One per loan and date; `request_hash` makes a
    # repeated request idempotent.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("loan_id", Id, ForeignKey("loans.id"), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("option", String(16), nullable=False),
    Column("term_months", Integer, nullable=False),
    Column("rate_before", String(24), nullable=False),
    Column("rate", String(24), nullable=False),
    Column("schedule_version_before", Integer, nullable=False),
    Column("schedule_version", Integer, nullable=False),
    Column("principal_before_fen", Fen, nullable=False),
    Column("capitalised_interest_fen", Fen, nullable=False),
    Column("capitalised_fee_fen", Fen, nullable=False),
    Column("capitalised_penalty_fen", Fen, nullable=False),
    Column("waived_interest_fen", Fen, nullable=False),
    Column("waived_fee_fen", Fen, nullable=False),
    Column("waived_penalty_fen", Fen, nullable=False),
    Column("principal_fen", Fen, nullable=False),
    Column("dpd_before", Integer, nullable=False),
    Column("class_before", String(16), nullable=False),
    Column("floor_class", String(16), nullable=False),
    Column("floor_severity", Integer, nullable=False),
    Column("observe_until", Date, nullable=False),
    Column("observe_until_day", Integer, nullable=False),
    Column("on_time_required", Integer, nullable=False),
    Column("on_time", Integer, nullable=False, default=0, server_default="0"),
    Column("status", String(12), nullable=False),
    Column("released_on", Date),
    Column("entry_id", Id, ForeignKey("journal_entries.id")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("loan_id", "business_date"),
    Index("ix_loan_restructures_status_loan_id", "status", "loan_id"),
)
