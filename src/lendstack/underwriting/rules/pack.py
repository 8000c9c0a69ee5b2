"""Rule packs: one TOML file per regulatory regime, parsed and validated into frozen values.

A pack carries the sha256 of its exact bytes and its text, so a decision can record which
regime it ran under and the audit log can replay it against the very same rules. Built-in
packs ship as package data in `packs/`; any other file can be loaded by path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from lendstack.core.errors import NotFound, ValidationError
from lendstack.underwriting.rules.model import FUNDING_KINDS, RuleStatus, Source
from lendstack.underwriting.rules.rule import Rule, check_lender_type
from lendstack.underwriting.rules.ruleset import RuleSet

PACK_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_PACK_KEYS = {"id", "version", "title", "description", "jurisdiction", "status"}
_PACK_KEYS |= {"effective_from", "rules"}
_RULE_KEYS = {"id", "kind", "description", "params", "effective_from", "effective_to"}
_RULE_KEYS |= {"status", "enabled", "applies_to", "source", "confidence"}
_SOURCE_KEYS = {"body", "document", "section", "doc_no", "date"}
_SELECT_CACHE = 1024


@dataclass(frozen=True, slots=True)
class RulePack:
    """One regime's rules. `status` and `effective_from` describe the pack as a whole:
    `default_pack` picks the newest final one, so a scenario pack is never a silent default.
    """

    id: str
    version: str
    title: str
    description: str
    sha256: str
    text: str
    rules: tuple[Rule, ...]
    jurisdiction: str = ""
    status: RuleStatus = RuleStatus.FINAL
    effective_from: date | None = None
    _select: Callable[[date, str], RuleSet] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        _reject_duplicates(self.rules, self.id)
        cached = functools.lru_cache(maxsize=_SELECT_CACHE)(self._select_uncached)
        object.__setattr__(self, "_select", cached)

    def summary(self) -> dict[str, Any]:
        """The pack's identity as plain JSON values: what `rules list` and the API show."""
        start = self.effective_from
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "status": self.status.value,
            "effective_from": None if start is None else start.isoformat(),
            "jurisdiction": self.jurisdiction,
            "rules": len(self.rules),
            "sha256": self.sha256,
        }

    def select(self, on: date, lender_type: str) -> RuleSet:
        """The rules that govern a loan made on `on` by this type of lender (cached)."""
        if isinstance(on, datetime) or not isinstance(on, date):
            raise ValidationError(f"must be a date, got {on!r}", field="on")
        return self._select(on, check_lender_type(lender_type))

    def _select_uncached(self, on: date, lender_type: str) -> RuleSet:
        chosen = tuple(
            r for r in self.rules if r.applies(on, lender_type) and r.kind not in FUNDING_KINDS
        )
        return RuleSet(self.id, self.version, self.sha256, chosen, on, lender_type)

    def funding_rules(self, on: date) -> tuple[Rule, ...]:
        """The co-lending rules in force on `on` (disabled ones included, as in `select`).

        They govern the funders of a loan rather than its borrower, so they are not part of
        any RuleSet: the application is never screened on them.
        """
        return tuple(r for r in self.rules if r.kind in FUNDING_KINDS and r.in_force(on))

    def rule(self, rule_id: str) -> Rule:
        for candidate in self.rules:
            if candidate.id == rule_id:
                return candidate
        raise NotFound(f"pack {self.id} has no rule {rule_id!r}", field="rule_id")


def _reject_duplicates(rules: tuple[Rule, ...], pack_id: str) -> None:
    first: dict[str, int] = {}
    for number, rule in enumerate(rules, start=1):
        if rule.id in first:
            problem = f"is duplicated (rules #{first[rule.id]} and #{number} of pack {pack_id})"
            raise ValidationError(f"rule {rule.id}: id {problem}", field="id")
        first[rule.id] = number


def _text(table: Mapping[str, Any], key: str, owner: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        problem = "is missing" if value is None else f"must be a non-empty string, got {value!r}"
        raise ValidationError(f"{owner}: {key} {problem}", field=key)
    return value


def _optional_text(table: Mapping[str, Any], key: str, owner: str) -> str | None:
    return None if table.get(key) is None else _text(table, key, owner)


def _date(value: Any, owner: str, name: str) -> date:
    """TOML dates arrive as `date`; ISO strings are accepted for hand-written files."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = date.fromisoformat(value)
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValidationError(
            f"{owner}: {name} must be a date like 2025-10-01, got {value!r}", field=name
        )
    return value


def _source(table: Any, owner: str) -> Source:
    """The citation every rule must carry; a rule without one cannot be audited."""
    if table is None:
        problem = "is missing (needs body, document, section)"
        raise ValidationError(f"{owner}: source {problem}", field="source")
    if not isinstance(table, dict):
        raise ValidationError(f"{owner}: source must be a table, got {table!r}", field="source")
    _unknown(table, _SOURCE_KEYS, owner, "source.")
    when = table.get("date")
    if isinstance(when, date):
        when = when.isoformat()
    elif when is not None and not isinstance(when, str):
        problem = f"must be text or a date, got {when!r}"
        raise ValidationError(f"{owner}: source.date {problem}", field="source.date")
    text = {k: _source_text(table, k, owner) for k in ("body", "document", "section", "doc_no")}
    return Source(
        text["body"] or "", text["document"] or "", text["section"] or "", text["doc_no"], when
    )


def _source_text(table: Mapping[str, Any], key: str, owner: str) -> str | None:
    value = table.get(key)
    if value is None and key == "doc_no":
        return None
    if not isinstance(value, str) or not value.strip():
        problem = "is missing" if value is None else f"must be a non-empty string, got {value!r}"
        raise ValidationError(f"{owner}: source.{key} {problem}", field=f"source.{key}")
    return value


def _unknown(table: Mapping[str, Any], allowed: set[str], owner: str, prefix: str = "") -> None:
    for key in table:
        if key not in allowed:
            allowed_text = ", ".join(sorted(allowed))
            raise ValidationError(
                f"{owner}: {prefix}{key} is not a known field (allowed: {allowed_text})",
                field=f"{prefix}{key}",
            )


def _rule(table: Any, number: int) -> Rule:
    """Build one Rule from its TOML table; every error names the rule id and the field."""
    if not isinstance(table, dict):
        raise ValidationError(f"rule #{number}: must be a [[rules]] table", field="rules")
    rule_id = table.get("id")
    owner = f"rule {rule_id}" if isinstance(rule_id, str) else f"rule #{number}"
    _unknown(table, _RULE_KEYS, owner)
    for key in ("id", "kind", "description", "effective_from", "status", "confidence"):
        if key not in table:
            raise ValidationError(f"{owner}: {key} is missing", field=key)
    applies_to = table.get("applies_to", ())
    if applies_to == []:
        raise ValidationError(
            f"{owner}: applies_to is empty; omit it to mean every lender", field="applies_to"
        )
    end = table.get("effective_to")
    return Rule(
        id=table["id"],
        kind=table["kind"],
        description=table["description"],
        params=table.get("params", {}),
        effective_from=_date(table["effective_from"], owner, "effective_from"),
        effective_to=None if end is None else _date(end, owner, "effective_to"),
        status=table["status"],
        enabled=table.get("enabled", True),
        applies_to=applies_to,
        source=_source(table.get("source"), owner),
        confidence=table["confidence"],
    )


def _pack_header(data: Mapping[str, Any]) -> dict[str, Any]:
    _unknown(data, _PACK_KEYS, "pack")
    header: dict[str, Any] = {
        k: _text(data, k, "pack") for k in ("id", "version", "title", "description")
    }
    if not PACK_ID.match(header["id"]):
        raise ValidationError(
            f"pack: id {header['id']!r} must be lower case like cn-2025-10", field="id"
        )
    if not VERSION.match(header["version"]):
        raise ValidationError(
            f"pack: version {header['version']!r} must look like 1.0.0", field="version"
        )
    header["jurisdiction"] = _optional_text(data, "jurisdiction", "pack") or ""
    status = data.get("status", RuleStatus.FINAL.value)
    if status not in {s.value for s in RuleStatus}:
        raise ValidationError(f"pack: status {status!r} is not a rule status", field="status")
    header["status"] = RuleStatus(status)
    start = data.get("effective_from")
    header["effective_from"] = None if start is None else _date(start, "pack", "effective_from")
    return header


def parse_pack(text: str, source: str) -> RulePack:
    """Validate a pack's TOML text completely; `source` (a file name) prefixes every error."""
    try:
        return _parse(text)
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{source}: not valid TOML: {exc}", field="text") from exc


def _parse(text: str) -> RulePack:
    data = tomllib.loads(text, parse_float=Decimal)  # no binary float ever holds a limit
    header = _pack_header(data)
    tables = data.get("rules")
    if not isinstance(tables, list) or not tables:
        raise ValidationError("pack: needs at least one [[rules]] table", field="rules")
    rules = tuple(_rule(table, number) for number, table in enumerate(tables, start=1))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return RulePack(sha256=digest, text=text, rules=rules, **header)


def _read(path: Path) -> RulePack:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"rule pack file {path} does not exist", field="pack") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc})", field="text") from exc
    return parse_pack(text, str(path))


@functools.cache
def builtin_packs() -> tuple[RulePack, ...]:
    """The packs shipped with lendstack, sorted by id; each file's stem must be its id."""
    folder = resources.files(__package__).joinpath("packs")
    packs = []
    for entry in folder.iterdir():
        if entry.name.endswith(".toml"):
            pack = parse_pack(entry.read_bytes().decode("utf-8"), f"packs/{entry.name}")
            if pack.id != entry.name.removesuffix(".toml"):
                raise ValidationError(
                    f"packs/{entry.name}: id {pack.id} differs from the file name", field="id"
                )
            packs.append(pack)
    return tuple(sorted(packs, key=lambda p: p.id))


def load_pack(ref: str | Path) -> RulePack:
    """A built-in pack by id ("cn-2025-10") or any pack file by path."""
    if isinstance(ref, Path) or ref.endswith(".toml") or "/" in ref or "\\" in ref:
        return _read(Path(ref))
    for pack in builtin_packs():
        if pack.id == ref:
            return pack
    known = ", ".join(p.id for p in builtin_packs())
    raise NotFound(f"unknown rule pack {ref!r}; built-in packs: {known}", field="pack")


def default_pack() -> RulePack:
    """The newest built-in pack whose status is final: scenario packs are opt-in."""
    final = [p for p in builtin_packs() if p.status is RuleStatus.FINAL]
    if not final:
        raise NotFound("no final built-in rule pack", field="pack")
    return max(final, key=lambda p: (p.effective_from or date.min, p.id))
