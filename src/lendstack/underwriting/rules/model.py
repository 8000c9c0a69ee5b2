"""The vocabulary of rule packs: enums, the facts a rule reads, and what a rule reports.

These are plain frozen values so the decision engine, the audit log and the CLI can share them
without sharing behaviour. Nothing here knows about TOML files or which rules exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class RuleStatus(StrEnum):
    """How binding a rule is in law; operators may choose to enforce only some statuses."""

    FINAL = "final"
    DRAFT = "draft"
    GUIDANCE = "guidance"
    SELF_REG = "self-reg"
    JUDICIAL = "judicial"


class Confidence(StrEnum):
    """How well the value is sourced (REGULATION.md): confirmed, secondary, unconfirmed."""

    C = "C"
    S = "S"
    U = "U"


class RuleKind(StrEnum):
    """What a rule checks; each kind has a fixed parameter schema (see `params.py`)."""

    CREDIT_LINE_MAX = "credit_line_max"
    INCOME_SHARE_MAX = "income_share_max"
    APR_MAX = "apr_max"
    BULLET_TERM_MAX = "bullet_term_max"
    TERM_MAX = "term_max"
    FORBIDDEN_PURPOSES = "forbidden_purposes"
    NO_STUDENTS = "no_students"
    REQUIRED_CONSENTS = "required_consents"
    AGE_RANGE = "age_range"
    ACTIVE_LENDERS_MAX = "active_lenders_max"
    DTI_MAX = "dti_max"
    COLENDING_OWN_SHARE_MIN = "colending_own_share_min"
    COLENDING_SHARE_MIN = "colending_share_min"
    COLENDING_TIER1_MAX = "colending_tier1_max"
    COLENDING_TOTAL_LOANS_MAX = "colending_total_loans_max"


class Verdict(StrEnum):
    """A rule's outcome. ERROR means the rule could not decide: callers must treat it as FAIL."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    DISABLED = "disabled"


LENDER_TYPES: tuple[str, ...] = ("bank", "consumer_finance_company", "online_microlender")
"""The licence types a rule can be scoped to (the same values as the application schema)."""

REPAYMENT_METHODS: tuple[str, ...] = (
    "equal-installment",
    "equal-principal",
    "interest-free-fee",
    "interest-first",
    "bullet",
)
"""Repayment method names as servicing spells them; bullet rules name a subset."""

SCREEN_KINDS = frozenset(
    {
        RuleKind.FORBIDDEN_PURPOSES,
        RuleKind.NO_STUDENTS,
        RuleKind.REQUIRED_CONSENTS,
        RuleKind.AGE_RANGE,
        RuleKind.ACTIVE_LENDERS_MAX,
    }
)
"""Kinds that read only the applicant, so the engine can decline before scoring or pricing."""

PRICED_KINDS = frozenset({RuleKind.APR_MAX, RuleKind.DTI_MAX})
"""Kinds that read the priced offer (`apr_irr`, `monthly_installment`)."""

FUNDING_KINDS = frozenset(
    {
        RuleKind.COLENDING_OWN_SHARE_MIN,
        RuleKind.COLENDING_SHARE_MIN,
        RuleKind.COLENDING_TIER1_MAX,
        RuleKind.COLENDING_TOTAL_LOANS_MAX,
    }
)
"""Co-lending kinds (REGULATION.md §2): they bind who funds a loan, not whom we lend to, so
`RulePack.select` leaves them out of the application's RuleSet and `RulePack.funding_rules`
hands them to the funding allocator instead."""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a rule may read about one application and one candidate offer.

    The engine builds it; rules never fetch anything themselves, which keeps them pure and
    makes a decision replayable from the stored facts alone.
    """

    application_date: date
    lender_type: str
    age: int
    purpose: str
    is_student: bool
    consents: frozenset[str]
    active_lenders: int
    monthly_income: Decimal
    monthly_obligations: Decimal
    existing_balance: Decimal
    """The borrower's outstanding balance with us: caps count it with the new amount."""
    amount: Decimal
    term_months: int
    repayment_method: str
    apr_irr: Decimal | None = None
    """All-in APR (IRR including every fee) of the offer; None before pricing."""
    monthly_installment: Decimal | None = None
    """The largest installment of the offer; None before pricing."""


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's verdict, with the observed value and limit as text for reason codes."""

    rule_id: str
    kind: RuleKind
    verdict: Verdict
    observed: str | None
    limit: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Binding:
    """The strictest applicable cap and the rule that set it, so a decision can cite it."""

    value: Decimal
    rule_id: str


@dataclass(frozen=True, slots=True)
class Source:
    """Where a rule's value comes from; `section` points into REGULATION.md."""

    body: str
    document: str
    section: str
    doc_no: str | None = None
    date: str | None = None
    """Free text: sources often give only a month or a range of dates."""
