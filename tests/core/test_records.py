"""`quick_init` builds the same frozen records as the dataclass `__init__` it replaces."""

from __future__ import annotations

import copy
import inspect
import pickle
from dataclasses import (
    MISSING,
    FrozenInstanceError,
    InitVar,
    astuple,
    dataclass,
    field,
    fields,
    make_dataclass,
    replace,
)
from inspect import Parameter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.records import quick_init
from lendstack.funding.subledger import Holding, Part
from lendstack.servicing.domain.ledger import JournalEntry, Posting
from lendstack.servicing.domain.loan import (
    AccrualPeriod,
    Balances,
    InstallmentState,
    LoanContract,
    LoanState,
)
from lendstack.servicing.domain.payments import Applied, InstallmentPart, PaymentOutcome
from lendstack.servicing.domain.waterfall import Allocation
from lendstack.servicing.ports import StoredPayment


def _check_a(self: Any) -> None:
    if self.a < 0:
        raise ValueError(f"negative {self.a}")


def _record(name: str) -> Any:
    """The same frozen slots dataclass, under `name`: one is compared with the other."""
    return make_dataclass(
        name,
        [("a", int), ("b", str, "b"), ("c", int | None, field(default=None))],
        namespace={"__post_init__": _check_a, "__module__": __name__},  # picklable by name
        frozen=True,
        slots=True,
    )


Plain = _record("Plain")
Quick = quick_init(_record("Quick"))


@given(st.integers(), st.text(), st.none() | st.integers(), st.integers(0, 3))
def test_same_record_as_the_dataclass_init(a: int, b: str, c: int | None, given_args: int) -> None:
    args: tuple[Any, ...] = (a, b, c)[: max(given_args, 1)]
    if a < 0:
        with pytest.raises(ValueError, match="negative"):
            Quick(*args)  # __post_init__ still runs
        return
    plain, quick = Plain(*args), Quick(*args)
    assert astuple(quick) == astuple(plain)
    assert repr(quick).replace("Quick", "Plain") == repr(plain)
    assert quick == Quick(**{f.name: getattr(quick, f.name) for f in fields(Quick)})
    assert hash(quick) == hash(plain)  # the same field values hash alike in both classes
    assert pickle.loads(pickle.dumps(quick)) == quick
    assert astuple(replace(quick, a=a + 1)) == astuple(replace(plain, a=a + 1))
    assert astuple(copy.copy(quick)) == astuple(plain)
    with pytest.raises(FrozenInstanceError):
        quick.a = 1  # type: ignore[misc]


def test_same_signature() -> None:
    assert inspect.signature(Quick) == inspect.signature(Plain)
    with pytest.raises(TypeError):
        Quick()  # type: ignore[call-arg]


HOT = [
    LoanContract, InstallmentState, Balances, AccrualPeriod, LoanState, InstallmentPart,
    Applied, PaymentOutcome, Allocation, Posting, JournalEntry, StoredPayment, Part, Holding,
]  # fmt: skip


@pytest.mark.parametrize("cls", HOT, ids=lambda c: c.__name__)
def test_hot_records_keep_their_parameters(cls: type) -> None:
    """Each field a positional parameter, in order, with the dataclass field's default."""
    params = [(p.name, p.default) for p in inspect.signature(cls).parameters.values()]
    expected = [
        (f.name, Parameter.empty if f.default is MISSING else f.default) for f in fields(cls)
    ]
    assert params == expected


def test_refuses_what_it_does_not_support() -> None:
    with pytest.raises(TypeError, match="not a frozen"):
        quick_init(dataclass(slots=True)(type("Open", (), {"__annotations__": {"a": "int"}})))
    with pytest.raises(TypeError, match="no slots"):
        quick_init(dataclass(frozen=True)(type("Dict", (), {"__annotations__": {"a": "int"}})))
    with pytest.raises(TypeError, match="positional"):

        @quick_init
        @dataclass(frozen=True, slots=True, kw_only=True)
        class KeywordOnly:
            a: int

    with pytest.raises(TypeError, match="positional"):

        @quick_init
        @dataclass(frozen=True, slots=True)
        class WithInitVar:
            a: int
            b: InitVar[int] = 0

    with pytest.raises(TypeError, match="own __init__"):

        @quick_init
        @dataclass(frozen=True, slots=True, init=False)
        class OwnInit:
            a: int

            def __init__(self, a: int) -> None:
                object.__setattr__(self, "a", a * 100)

    with pytest.raises(TypeError, match="factory"):

        @quick_init
        @dataclass(frozen=True, slots=True)
        class WithFactory:
            a: tuple[int, ...] = field(default_factory=tuple)
