"""Reading the project's data files (products, partners, policy): TOML in, validated models out.

One place decides two things every data file needs: TOML floats are read as Decimal, so no
binary float ever touches a rate or a limit, and a schema error becomes a ValidationError
that names the file (or the entity) and the dotted field.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from lendstack.core.errors import ValidationError

M = TypeVar("M", bound=BaseModel)


def load_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{source}: not valid TOML: {exc}", field="file") from exc


def validated(model: type[M], data: Mapping[str, Any], who: str) -> M:
    """`data` as `model`, or a ValidationError naming `who` and the first bad field."""
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "file"
        raise ValidationError(f"{who}: {first['msg']}", field=field) from exc
