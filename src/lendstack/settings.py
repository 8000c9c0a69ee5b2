"""One frozen Settings object, read once from the environment at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///lendstack.db"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    products_dir: Path | None = None
    """Extra product files; they override built-in products with the same id."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        products = env.get("LENDSTACK_PRODUCTS_DIR")
        return cls(
            database_url=env.get("LENDSTACK_DATABASE_URL", DEFAULT_DATABASE_URL),
            products_dir=Path(products) if products else None,
        )

    def with_database(self, url: str | None) -> Settings:
        return self if not url else replace(self, database_url=url)
