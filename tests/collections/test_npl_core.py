"""The NPL sale's pure core: eligibility, buyers, the tape, recovery curves, valuation, splits."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.collections.npl_buyers import BuyerKind, load_buyers, parse_buyers, require_buyer
from lendstack.collections.npl_eligibility import (
    Candidate,
    check,
    parse_criteria,
    pilot,
    screen,
)
from lendstack.collections.npl_recovery import (
    HORIZON,
    PRIOR,
    History,
    Source,
    build_curve,
    observed_curve,
    pool,
)
from lendstack.collections.npl_sale import (
    PLATFORM_OWN,
    SaleTotals,
    funder_split,
    proceeds_by_funder,
    sale_entry,
    split_weighted,
)
from lendstack.collections.npl_tape import (
    FIELD_NAMES,
    MANDATORY,
    age_band,
    claims,
    completeness,
    validate,
)
from lendstack.collections.npl_valuation import (
    Package,
    Terms,
    expected_cash,
    irr_from_price,
    npv,
    value,
)
from lendstack.core.errors import NotFound, ValidationError
from lendstack.servicing.domain.ledger import Account, Side

DAY = date(2026, 9, 10)


def loan(**kw: object) -> Candidate:
    fields: dict[str, object] = {
        "loan_id": 1,
        "product_id": "cash-loan-installment",
        "status": "active",
        "risk_class": "substandard",
        "dpd": 120,
    }
    fields.update(kw)
    return Candidate(**fields)  # type: ignore[arg-type]


# --- eligibility --------------------------------------------------------------------------


def test_an_unsecured_substandard_consumer_loan_is_eligible() -> None:
    assert check(loan(), pilot(), DAY).eligible


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"risk_class": "special_mention"}, "better than substandard"),
        ({"product_id": "guaranteed-installment"}, "secured"),
        ({"product_id": "mystery"}, "no category"),
        ({"status": "paid_off"}, "cannot be sold"),
        ({"sold": True}, "already sold"),
        ({"in_open_portfolio": True}, "another open portfolio"),
    ],
)
def test_each_pilot_rule_excludes_with_its_reason(change: dict[str, object], reason: str) -> None:
    verdict = check(loan(**change), pilot(), DAY)
    assert not verdict.eligible
    assert any(reason in r for r in verdict.reasons)


def test_the_pilot_end_date_is_a_parameter() -> None:
    assert check(loan(), pilot(date(2026, 9, 10)), DAY).eligible
    late = check(loan(), pilot(date(2026, 9, 9)), DAY)
    assert late.reasons == ("the pilot ended on 2026-09-09",)


def test_doubtful_and_loss_are_worse_than_substandard_and_eligible() -> None:
    assert check(loan(risk_class="doubtful"), pilot(), DAY).eligible
    assert check(loan(risk_class="loss", status="charged_off"), pilot(), DAY).eligible


def test_criteria_file_overrides_keys_and_names_bad_fields() -> None:
    text = 'min_class = "doubtful"\npilot_end = 2027-06-30\n[products.auto-x]\ncategory = "auto"\n'
    criteria = parse_criteria(text, "c.toml")
    assert criteria.pilot_end == date(2027, 6, 30)
    assert not check(loan(), criteria, DAY).eligible
    assert "category auto is outside" in check(loan(product_id="auto-x", risk_class="loss"),
                                               criteria, DAY).reasons[0]  # fmt: skip
    with pytest.raises(ValidationError) as bad:
        parse_criteria('min_class = "awful"', "c.toml")
    assert bad.value.field == "min_class"
    with pytest.raises(ValidationError) as bad:
        parse_criteria('statuses = ["paid_off"]', "c.toml")
    assert bad.value.field == "statuses"


# --- buyers -------------------------------------------------------------------------------


def test_default_buyers_are_the_five_national_amcs_and_some_local_ones() -> None:
    buyers = load_buyers()
    national = {b.id for b in buyers.buyers if b.kind is BuyerKind.NATIONAL_AMC}
    assert national == {"cinda", "huarong", "great-wall", "orient", "galaxy"}
    assert any(b.kind is BuyerKind.LOCAL_AMC for b in buyers.buyers)
    assert buyers.illustrative


def test_unknown_and_non_amc_buyers_are_refused() -> None:
    buyers = parse_buyers('[[buyer]]\nid = "fund"\nname = "A fund"\nkind = "other"\n', "b.toml")
    with pytest.raises(NotFound) as unknown:
        require_buyer(buyers, "nobody")
    assert unknown.value.field == "buyer"
    with pytest.raises(ValidationError) as not_amc:
        require_buyer(buyers, "fund")
    assert not_amc.value.field == "buyer"


# --- tape ---------------------------------------------------------------------------------


def tape_row(**kw: object) -> dict[str, list[object]]:
    row: dict[str, object] = dict.fromkeys(FIELD_NAMES, "x")
    row.update({"loan_id": 1, "principal": 100, "interest": 20, "fee": 3, "penalty": 4,
                "claim": 127, "recovered": 0, "dpd": 120, "risk_class": "substandard"})  # fmt: skip
    row.update(kw)
    return {k: [v] for k, v in row.items()}


def test_completeness_lists_missing_mandatory_fields_only() -> None:
    report = completeness(tape_row(region=None, age_band="", contact_attempts=None))
    assert dict(report.missing) == {"region": 1, "age_band": 1}
    assert "contact_attempts" not in MANDATORY


def test_validate_catches_a_claim_that_is_not_its_parts() -> None:
    assert validate(tape_row()) == []
    assert "not its parts' sum" in validate(tape_row(claim=128))[0]
    assert "negative" in validate(tape_row(fee=-1, claim=123))[0]
    assert validate({"loan_id": [1]})[0].startswith("field ")


@pytest.mark.parametrize(("age", "band"), [(17, None), (18, "18-24"), (24, "18-24"),
                                           (25, "25-34"), (54, "45-54"), (55, "55+"),
                                           (None, None)])  # fmt: skip
def test_age_bands_at_their_edges(age: int | None, band: str | None) -> None:
    assert age_band(age) == band


# --- recovery curves ----------------------------------------------------------------------


def history(n: int, observed: int, per_month: int, exposure: int = 10_000) -> History:
    """n loans of `exposure` fen, each recovering `per_month` fen in months 3..observed."""
    months = np.arange(3, observed + 1)
    return History(
        np.full(n, exposure, dtype=np.int64),
        np.full(n, observed, dtype=np.int64),
        np.repeat(np.arange(n), len(months)).astype(np.int64),
        np.tile(months, n).astype(np.int64),
        np.full(n * len(months), per_month, dtype=np.int64),
    )


def test_observed_curve_is_cash_over_exposure_by_month() -> None:
    cum, last = observed_curve(history(120, 24, 50))
    assert last == 24
    # 50 fen a month on 10,000 from month 3: 0.5 % a month
    assert cum[2] == 0
    assert cum[3] == pytest.approx(0.005)
    assert cum[24] == pytest.approx(0.005 * 22)


def test_censored_loans_do_not_drag_later_months_down() -> None:
    old, young = history(100, 30, 50), history(100, 6, 50)
    both = pool([old, young])
    cum, _ = observed_curve(both)
    # month 20 is seen only by the old loans: their rate, not half of it
    assert cum[20] - cum[19] == pytest.approx(0.005)


def test_thin_history_falls_back_to_the_prior_and_says_so() -> None:
    thin = history(10, 24, 50)
    curve = build_curve("x", thin, thin)
    assert curve.source is Source.PRIOR
    assert "too thin" in curve.note
    assert np.allclose(curve.cumulative, PRIOR.cumulative())


def test_a_segment_without_history_uses_the_pooled_one() -> None:
    rich = history(150, 40, 30)
    curve = build_curve("new", pool([]), rich)
    assert curve.source is Source.POOLED
    assert curve.cumulative[40] == pytest.approx(0.003 * 38)
    assert curve.cumulative[HORIZON] > curve.cumulative[40]  # extended with the prior's shape


# --- valuation ----------------------------------------------------------------------------


def one_loan(claim: int, age: int) -> Package:
    a = np.array
    return Package(a([0]), a([age]), a([claim]), a([claim]), a([0]))


def test_price_is_the_discounted_prior_cash_computed_independently() -> None:
    curve = build_curve("s", pool([]), pool([]))
    claim, age, irr = 1_000_000, 5, 0.15
    flows = [claim * (PRIOR.ultimate * (1 - np.exp(-(age + k - 3) / 24))
                      - PRIOR.ultimate * (1 - np.exp(-(age + k - 1 - 3) / 24)))
             for k in range(1, HORIZON - age + 1)]  # fmt: skip
    expected = sum(f * 0.7 / (1.15 ** (k / 12)) for k, f in enumerate(flows, start=1))
    result = value(one_loan(claim, age), [curve], Terms(irr))
    assert float(result.price) * 100 == pytest.approx(expected, abs=0.5)
    assert result.irr_ok


@given(
    claims=st.lists(st.integers(10**7, 10**9), min_size=1, max_size=20),
    ages=st.lists(st.integers(0, 60), min_size=20, max_size=20),
    irr=st.floats(0.02, 0.6),
    haircut=st.floats(0, 0.8),
)
def test_irr_recomputed_from_the_price_is_the_target(
    claims: list[int], ages: list[int], irr: float, haircut: float
) -> None:
    n = len(claims)
    pkg = Package(np.zeros(n, dtype=np.int64), np.array(ages[:n]), np.array(claims),
                  np.array(claims), np.zeros(n, dtype=np.int64))  # fmt: skip
    curve = build_curve("s", pool([]), pool([]))
    result = value(pkg, [curve], Terms(irr, haircut))
    assert result.irr_recomputed is not None
    assert abs(result.irr_recomputed - irr) <= 1e-4


def test_the_irr_check_fails_honestly_when_rounding_to_the_fen_moves_it() -> None:
    # a 100-yuan claim is worth a few yuan: half a fen of rounding is several basis points
    curve = build_curve("s", pool([]), pool([]))
    result = value(one_loan(10_000, 0), [curve], Terms(0.25))
    assert result.irr_recomputed is not None
    assert not result.irr_ok
    assert result.as_json()["irr_check"]["ok"] is False


def test_irr_from_price_inverts_npv() -> None:
    flows = np.array([100.0] * 24)
    assert irr_from_price(flows, npv(flows, 0.2)) == pytest.approx(0.2, abs=1e-9)
    assert irr_from_price(flows, 0) is None


def test_expected_cash_of_a_loan_past_the_horizon_is_nothing() -> None:
    curve = build_curve("s", pool([]), pool([]))
    assert expected_cash(one_loan(10**6, HORIZON), [curve]).sum() == 0


def test_sensitivity_grid_falls_with_irr_and_haircut() -> None:
    curve = build_curve("s", pool([]), pool([]))
    result = value(one_loan(10**8, 2), [curve], Terms(0.15, 0.1))
    cells = {(i, h): p for i, h, p in result.grid}
    irrs = sorted({i for i, _ in cells})
    cuts = sorted({h for _, h in cells})
    assert 0.15 in irrs
    assert 0.1 in cuts
    for i in irrs:
        assert [cells[(i, h)] for h in cuts] == sorted((cells[(i, h)] for h in cuts), reverse=True)
    for h in cuts:
        assert [cells[(i, h)] for i in irrs] == sorted((cells[(i, h)] for i in irrs), reverse=True)


def test_a_fresh_npl_book_prices_inside_chinas_reported_range() -> None:
    curve = build_curve("s", pool([]), pool([]))
    ages = np.array([0, 1, 2, 3, 4, 5])
    claims = np.full(6, 10**6)
    pkg = Package(np.zeros(6, dtype=np.int64), ages, claims, claims * 9 // 10, claims // 10)
    result = value(pkg, [curve], Terms(0.15))
    assert result.pct_pi is not None
    assert Decimal("2.65") <= result.pct_pi <= Decimal("7.3")
    assert "within" in result.market_position()


@pytest.mark.parametrize(("irr", "haircut"), [(-0.6, 0), (0.1, 1), (0.1, -0.1)])
def test_bad_terms_name_their_field(irr: float, haircut: float) -> None:
    with pytest.raises(ValidationError):
        Terms(irr, haircut)


# --- splits and the entry -----------------------------------------------------------------


@given(total=st.integers(0, 10**12),
       weights=st.dictionaries(st.integers(1, 10**6), st.integers(0, 10**9), min_size=1,
                               max_size=30))  # fmt: skip
def test_split_sums_to_the_fen_and_each_part_is_within_a_fen_of_exact(
    total: int, weights: dict[int, int]
) -> None:
    parts = split_weighted(total, weights)
    assert sum(parts.values()) == total
    base = sum(weights.values())
    for k, fen in parts.items():
        exact = Fraction(total * weights[k], base) if base else Fraction(total, len(weights))
        assert exact - 1 < fen <= exact + 1
        assert fen >= 0


share_maps = st.dictionaries(st.sampled_from(["platform", "bank-a", "bank-b"]),
                             st.integers(0, 10_000), max_size=3)  # fmt: skip


@given(price=st.integers(0, 10**11),
       loans=st.dictionaries(st.integers(1, 500), st.tuples(st.integers(0, 10**8), share_maps),
                             min_size=1, max_size=40))  # fmt: skip
def test_funder_proceeds_sum_to_the_price_to_the_fen(
    price: int, loans: dict[int, tuple[int, dict[str, int]]]
) -> None:
    loan_prices = split_weighted(price, {lid: claim for lid, (claim, _) in loans.items()})
    shares = {lid: s for lid, (_, s) in loans.items() if any(s.values())}
    split = funder_split(loan_prices, shares)
    assert sum(proceeds_by_funder(split).values()) == price
    for lid, parts in split.items():
        assert sum(parts.values()) == loan_prices[lid]
        if lid not in shares:
            assert set(parts) == {PLATFORM_OWN}


@given(parts=st.tuples(*[st.integers(0, 10**9)] * 4), suspense_share=st.floats(0, 1),
       allowance=st.integers(0, 10**9), price=st.integers(0, 10**9))  # fmt: skip
def test_the_sale_entry_balances_and_its_loss_is_carrying_less_price(
    parts: tuple[int, int, int, int], suspense_share: float, allowance: int, price: int
) -> None:
    p, i, f, pen = parts
    suspense = int((i + f + pen) * suspense_share)
    totals = SaleTotals(p, i, f, pen, suspense, allowance, price)
    if p + i + f + pen + suspense + allowance + price == 0:
        return
    entry = sale_entry(totals, DAY, "t")
    debit = sum(x.amount for x in entry.postings if x.side is Side.DEBIT)
    credit = sum(x.amount for x in entry.postings if x.side is Side.CREDIT)
    assert debit == credit
    net_loss = sum(
        (x.amount if x.side is Side.DEBIT else -x.amount)
        for x in entry.postings
        if x.account is Account.LOAN_SALE_LOSS
    )
    assert net_loss * 100 == (p + i + f + pen - suspense - allowance) - price


# --- column-wise versions agree with the one-loan rules ----------------------------------


candidates_st = st.lists(
    st.builds(
        Candidate,
        loan_id=st.integers(1, 10**6),
        product_id=st.sampled_from(["cash-loan-installment", "guaranteed-installment",
                                    "business-loan-interest-first", "mystery"]),
        status=st.sampled_from(["active", "charged_off", "paid_off", "sold"]),
        risk_class=st.sampled_from(["normal", "special_mention", "substandard", "doubtful",
                                    "loss"]),
        dpd=st.integers(0, 400),
        sold=st.booleans(),
        in_open_portfolio=st.booleans(),
    ),
    min_size=1,
    max_size=40,
)  # fmt: skip


@given(loans=candidates_st, late=st.booleans(), min_dpd=st.sampled_from([0, 120]))
def test_screen_agrees_with_check_loan_by_loan(
    loans: list[Candidate], late: bool, min_dpd: int
) -> None:
    criteria = replace(pilot(date(2026, 9, 1) if late else date(2026, 12, 31)), min_dpd=min_dpd)
    a = np.array
    mask, counts = screen(
        a([x.product_id for x in loans], dtype=object), a([x.status for x in loans], dtype=object),
        a([x.risk_class for x in loans], dtype=object), a([x.dpd for x in loans]),
        a([x.sold for x in loans]), a([x.in_open_portfolio for x in loans]), criteria, DAY,
    )  # fmt: skip
    verdicts = [check(x, criteria, DAY) for x in loans]
    assert mask.tolist() == [v.eligible for v in verdicts]
    expected: dict[str, int] = {}
    for v in verdicts:
        for r in v.reasons:
            expected[r] = expected.get(r, 0) + 1
    assert counts == expected


def test_charged_off_claims_apply_recoveries_to_fee_interest_then_principal() -> None:
    a = np.array
    active = a([False, False, True])
    # charged 1,000: 700 principal and 50 fee on the schedule, 250 interest; recovered 0, 280
    balances = (a([0, 0, 5]), a([0, 0, 6]), a([0, 0, 7]), a([0, 0, 8]))
    principal, interest, fee, penalty = claims(
        active, balances, a([1000, 1000, 0]), a([0, 280, 0]), (a([700, 700, 9]), a([50, 50, 9]))
    )
    assert principal.tolist() == [700, 700, 5]
    assert fee.tolist() == [50, 0, 7]
    assert interest.tolist() == [250, 20, 6]
    assert penalty.tolist() == [0, 0, 8]


def test_recoveries_beyond_fee_and_interest_reduce_principal_last() -> None:
    a = np.array
    z = a([0])
    p, i, f, pen = claims(a([False]), (z, z, z, z), a([1000]), a([900]), (a([800]), a([300])))
    # schedule says 800 principal; the fee is capped at the 200 left; no interest remains
    assert (int(p[0]), int(i[0]), int(f[0])) == (100, 0, 0)
    assert int(p[0] + i[0] + f[0] + pen[0]) == 1000 - 900
