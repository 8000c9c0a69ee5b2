"""The application schema: the shipped example validates, and bad input names its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError as PydanticError

from example_app import payload
from lendstack.underwriting.application import Application
from lendstack.underwriting.batch_input import field_errors, unflatten

example = payload  # a fresh copy of the shipped example each call


def test_example_is_valid() -> None:
    app = Application.model_validate(example())
    assert app.age == 34
    assert str(app.loan.amount) == "20000.00"


def _errors(payload: dict[str, Any]) -> list[str]:
    with pytest.raises(PydanticError) as info:
        Application.model_validate(payload)
    return [e["field"] for e in field_errors(info.value)]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("applicant", "resident_id"), "110105194912310021", "applicant.resident_id"),
        (("applicant", "mobile"), "123", "applicant.mobile"),
        (("applicant", "province"), "Atlantis", "applicant.province"),
        (("applicant", "monthly_income"), True, "applicant.monthly_income"),
        (("applicant", "monthly_income"), "-5", "applicant.monthly_income"),
        (("loan", "amount"), "100.001", "loan.amount"),
        (("loan", "amount"), 0, "loan.amount"),
        (("loan", "purpose"), "lottery", "loan.purpose"),
        (("loan", "repayment_method"), "balloon", "loan.repayment_method"),
        (("bureau", "inquiries_12m"), 0, "bureau.inquiries_12m"),
        (("platform", "on_time_share"), 1.5, "platform.on_time_share"),
        (("lender_type",), "pawnshop", "lender_type"),
        (("application_date",), "2026-13-01", "application_date"),
    ],
)
def test_bad_fields_are_named(path: tuple[str, ...], value: Any, field: str) -> None:
    payload = copy.deepcopy(example())
    node = payload
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert field in _errors(payload)


def test_unknown_fields_are_refused() -> None:
    payload = example()
    payload["applicant"]["salary_cash"] = "1"
    assert "applicant.salary_cash" in _errors(payload)


def test_flat_columns_unflatten() -> None:
    assert unflatten({"loan.amount": "1", "channel": "x", "bureau.inquiries_3m": ""}) == {
        "loan": {"amount": "1"},
        "channel": "x",
    }
