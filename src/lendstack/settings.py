"""One frozen Settings object, read once from the environment at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///lendstack.db"
DEFAULT_PII_KEY_FILE = Path("lendstack-pii.key")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    products_dir: Path | None = None
    """Extra product files; they override built-in products with the same id."""
    model_dir: Path | None = None
    """Credit model directory for underwriting; None means the shipped default model."""
    rule_pack: str | None = None
    """Rule pack id or file for new decisions; None means the newest built-in pack."""
    pii_key: str | None = None
    """Base64 AES-256 key for PII at rest (LENDSTACK_PII_KEY). Wins over the key file."""
    pii_key_file: Path = DEFAULT_PII_KEY_FILE
    """Where the PII key lives when LENDSTACK_PII_KEY is unset; created on first use."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_url=env.get("LENDSTACK_DATABASE_URL", DEFAULT_DATABASE_URL),
            products_dir=_path(env.get("LENDSTACK_PRODUCTS_DIR")),
            model_dir=_path(env.get("LENDSTACK_MODEL_DIR")),
            rule_pack=env.get("LENDSTACK_RULE_PACK") or None,
            pii_key=env.get("LENDSTACK_PII_KEY") or None,
            pii_key_file=_path(env.get("LENDSTACK_PII_KEY_FILE")) or DEFAULT_PII_KEY_FILE,
        )

    def with_database(self, url: str | None) -> Settings:
        return self if not url else replace(self, database_url=url)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
