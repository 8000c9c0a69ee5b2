"""Frozen records that are cheap to build.

A `@dataclass(frozen=True, slots=True)` class gets an `__init__` that stores every field with
`object.__setattr__(self, name, value)`, the only way past the `__setattr__` that freezes it.
That call costs about three times a plain attribute store, and the hot paths build a few dozen
such records per payment (loan states, installments, postings, funder parts). `quick_init`
gives a class the same `__init__` (same parameters, defaults and `__post_init__`), storing each
field through its slot's descriptor instead, which is what `object.__setattr__` ends up
calling: the instance is the same, and it is still frozen afterwards.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import MISSING, fields, is_dataclass
from inspect import Parameter
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """`cls`, a frozen slots dataclass, with an `__init__` that stores fields through slots.

    Only what the records use is supported: positional fields, with or without a plain
    default, and `__post_init__`. Anything else (a default factory, keyword-only fields,
    `InitVar`, a field left out of `__init__`) is refused here, not mishandled later.
    """
    _check(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    env: dict[str, Any] = {f"_set_{n}": getattr(cls, n).__set__ for n in names}
    params = []
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is MISSING:
            params.append(f.name)
        else:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = [f"  _set_{n}(self, {n})" for n in names]
    if hasattr(cls, "__post_init__"):
        body.append("  self.__post_init__()")
    source = (
        f"def __create__({', '.join(env)}):\n"
        f" def __init__(self, {', '.join(params)}):\n"
        + "\n".join(f" {line}" for line in body)
        + "\n return __init__\n"
    )
    made: dict[str, Any] = {}
    exec(source, sys.modules[cls.__module__].__dict__, made)  # the source is built above
    init = made["__create__"](**env)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _check(cls: type) -> None:
    params = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    if not params.init:
        raise TypeError(f"{cls.__name__} has its own __init__ (init=False), not the dataclass one")
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} has no slots to store its fields through")
    generated = list(inspect.signature(cls.__init__).parameters.values())[1:]
    plain = all(p.kind is Parameter.POSITIONAL_OR_KEYWORD for p in generated)
    if not plain or [p.name for p in generated] != [f.name for f in fields(cls)]:
        raise TypeError(f"{cls.__name__}: only plain positional fields are supported")
    if any(f.default_factory is not MISSING for f in fields(cls)):
        raise TypeError(f"{cls.__name__}: a default factory is not supported")


def field_values(cls: type) -> attrgetter[Any]:
    """A getter of every field of a dataclass record, in its constructor's order, as one
    tuple: `cls(*field_values(cls)(record))` rebuilds the record (compact pickling of the
    records a process hands to another)."""
    return attrgetter(*(f.name for f in fields(cls)))
