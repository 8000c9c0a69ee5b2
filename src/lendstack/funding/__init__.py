"""Co-lending: funding partners, rule-bound allocation, and cash-flow splits to the fen.

A pure core (stdlib, pydantic for partner files, numpy/scipy for the batch LP); storage,
servicing sub-ledgers, settlement files and the partner-scoped API wire it in later.
"""

from lendstack.core.regions import PROVINCES
from lendstack.funding.allocation import (
    NO_CAPACITY,
    Allocator,
    Exclusion,
    FundingPlan,
    FundingShare,
    Outcome,
    allocate,
    apply,
    is_no_capacity,
)
from lendstack.funding.batch import BatchMethod, BatchResult, allocate_batch
from lendstack.funding.partners import (
    Appetite,
    Funder,
    FunderKind,
    Guarantee,
    Quotas,
    builtin_partners,
    guarantee_fee_per_period,
    load_partners,
    parse_partner,
    parse_partner_text,
)
from lendstack.funding.rules import (
    Breach,
    Exposure,
    LoanRequest,
    Policy,
    Rule,
    check_plan,
    headrooms,
    require_valid_plan,
)
from lendstack.funding.split import check_shares, split

__all__ = [
    "NO_CAPACITY",
    "PROVINCES",
    "Allocator",
    "Appetite",
    "BatchMethod",
    "BatchResult",
    "Breach",
    "Exclusion",
    "Exposure",
    "Funder",
    "FunderKind",
    "FundingPlan",
    "FundingShare",
    "Guarantee",
    "LoanRequest",
    "Outcome",
    "Policy",
    "Quotas",
    "Rule",
    "allocate",
    "allocate_batch",
    "apply",
    "builtin_partners",
    "check_plan",
    "check_shares",
    "guarantee_fee_per_period",
    "headrooms",
    "is_no_capacity",
    "load_partners",
    "parse_partner",
    "parse_partner_text",
    "require_valid_plan",
    "split",
]
