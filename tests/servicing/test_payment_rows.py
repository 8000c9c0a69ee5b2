"""What a payment batch writes and hashes, built by hand for speed, is what the plain code builds."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.money import from_fen, to_fen
from lendstack.servicing.domain.payments import Applied
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.ports import StoredPayment
from lendstack.servicing.services import Payment, _request_text
from lendstack.storage import mapping
from lendstack.storage.repositories import _applied_fen, _applied_json

_FEN = st.integers(min_value=-(10**12), max_value=10**12).map(from_fen)


@given(st.lists(_FEN, min_size=9, max_size=9))
def test_the_payment_body_is_the_sorted_json_of_its_fen(amounts: list[Decimal]) -> None:
    applied = Applied(*amounts[:7])
    payment = StoredPayment(
        id=0,
        loan_id=1,
        kind="payment",
        value_date=mapping.EPOCH,
        amount=Decimal("1.00"),
        idempotency_key="k",
        request_hash="h",
        status="posted",
        applied=applied,
        parts=(),
        entry_id=1,
        schedule_version_before=1,
        accrued_interest=amounts[7],
        accrued_fee=amounts[8],
    )
    fen = _applied_fen(payment)
    assert fen == {k: to_fen(v) for k, v in applied.as_dict().items()}
    body = {**fen, "accrued_interest": to_fen(amounts[7]), "accrued_fee": to_fen(amounts[8])}
    assert _applied_json(payment, fen) == json.dumps(body, sort_keys=True)


def test_a_zero_of_any_exponent_is_zero_fen() -> None:
    zeros = Applied(Decimal("0"), Decimal("0.000"), Decimal("-0.00"))
    payment_fen = _applied_fen(
        StoredPayment(
            0, 1, "payment", mapping.EPOCH, Decimal(1), "k", "h", "posted", zeros, (), 1, 1
        )
    )
    assert payment_fen == dict.fromkeys(Applied.__slots__, 0)


_DECIMALS = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.decimals(allow_nan=True, allow_infinity=True),
)


@given(
    st.integers(min_value=-(2**63), max_value=2**63),
    _DECIMALS,
    st.dates(),
    st.sampled_from([None, *PrepaymentMode]),
)
def test_the_request_text_is_the_json_of_the_request(
    loan_id: int, amount: Decimal, on: date, prepay: PrepaymentMode | None
) -> None:
    payment = Payment(loan_id, amount, on, "k", prepay)
    body = [loan_id, str(amount), on.isoformat(), prepay]
    assert _request_text(payment) == json.dumps(body)
    assert payment.fingerprint() == hashlib.sha256(json.dumps(body).encode()).hexdigest()
