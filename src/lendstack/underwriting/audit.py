"""The hash-chained decision log, as pure values: canonical JSON, chain hashes, verification.

Every entry's hash covers its predecessor's hash, so changing, removing or moving any record
changes every hash after it. Verification needs no key (PII inside a record is already
ciphertext) and no database: it reads entries in `seq` order once, in O(n) time, keeping a
dict of hash -> seq to tell a moved record from a removed one. See docs/audit.md for what an
attacker with write access to the table can and cannot hide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
"""The `prev_hash` of the first entry: a chain has exactly one start."""

_MAX_PAIRING = 256
"""Edited entries beyond this many are not paired up to spot swapped records (O(k²) work)."""


def _encode(value: Any) -> Any:
    """The JSON form of the non-JSON types a decision holds; anything else is a bug upstream."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | frozenset):
        return list(value)
    if isinstance(value, float):
        # A float subclass (numpy's float64): the json module wrote it as a float itself;
        # orjson hands it here.
        return float(value)
    raise TypeError(f"cannot put {type(value).__name__} into the audit log")


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
"""Dates and instants go to `_encode` (`isoformat`), as they did under the json module."""


def canonical_json(obj: Any) -> str:
    """One byte-exact text per value, so the same record always hashes the same.

    Sorted keys and no whitespace make the text independent of dict order and formatting;
    Decimals become strings so no float rounding ever touches money in the log.

    Written by orjson, about four times faster than the json module on a decision's record
    (most of a run's log writing), and byte for byte the json module's
    `dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` text, except for a
    float outside [1e-4, 1e16), which orjson writes in its own shortest form ("0.00001",
    where the json module wrote "1e-05"), and a NaN or infinity, which orjson writes as null
    (the json module wrote NaN, which is not JSON). A value orjson refuses (a key that is not
    text, an integer beyond 64 bits, text with a lone surrogate, nesting past 254 levels)
    takes the json module's text. Either way the same value always gives the same text; a
    stored record is verified by hashing its stored text, never by writing it again
    (`verify_chain`).
    """
    try:
        return orjson.dumps(obj, default=_encode, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, TypeError):  # `_encode`'s own refusal: a bug upstream
            raise exc.__cause__ from None
        return json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_encode
        )


def chain_hash(prev_hash: str, record_json: str) -> str:
    """sha256 of the predecessor's hash and this record.

    Linking in the previous hash makes a record's hash depend on every record before it: an
    edit anywhere breaks every later link unless the attacker rewrites the whole tail, and a
    rewritten tail no longer matches a head hash recorded elsewhere.
    """
    # surrogatepass: a corrupted row (lone surrogates) must hash to a mismatch, not crash verify
    data = f"{prev_hash}\n{record_json}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    kind: str
    decision_id: str
    record_json: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class HeadAnchor:
    """The last entry's position and hash, kept apart from the entries as a tamper check."""

    seq: int
    hash: str


def seal(seq: int, kind: str, decision_id: str, record_json: str, prev_hash: str) -> LogEntry:
    """The entry that follows `prev_hash`; the only way entries are meant to be made."""
    return LogEntry(
        seq, kind, decision_id, record_json, prev_hash, chain_hash(prev_hash, record_json)
    )


class ProblemKind(StrEnum):
    EDITED = "edited"
    """The record no longer matches its own hash."""
    DELETED = "deleted"
    """Records are missing: the link skips over a gap in seq."""
    REORDERED = "reordered"
    """A record links to (or belongs at) another position than where it sits."""
    TRUNCATED = "truncated"
    """The log ends before the anchored head."""
    FORGED_LINK = "forged_link"
    """A link to a hash no record has, or a tail that disagrees with the anchor: rewritten."""


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    checked: int
    problems: tuple[ChainProblem, ...]
    last: HeadAnchor | None
    """The last entry read: the head hash an operator should record elsewhere."""


@dataclass(frozen=True, slots=True)
class _BadLink:
    seq: int
    prev_seq: int | None
    prev_hash: str
    expected: str


def _first_pass(
    entries: Iterable[LogEntry],
    seen: dict[str, int],
    edited: list[LogEntry],
    links: list[_BadLink],
) -> tuple[LogEntry | None, int]:
    """Check each record against its hash and its link; keep only the failures."""
    before: LogEntry | None = None
    count = 0
    for entry in entries:
        count += 1
        if chain_hash(entry.prev_hash, entry.record_json) != entry.hash:
            edited.append(entry)
        expected = GENESIS_HASH if before is None else before.hash
        gap = entry.seq != (1 if before is None else before.seq + 1)
        if entry.prev_hash != expected or gap:
            prev_seq = None if before is None else before.seq
            links.append(_BadLink(entry.seq, prev_seq, entry.prev_hash, expected))
        seen.setdefault(entry.hash, entry.seq)
        before = entry
    return before, count


def _classify_link(bad: _BadLink, seen: Mapping[str, int]) -> ChainProblem:
    """Why a link broke: moved (it names another record), removed (a gap), or forged."""
    expected_seq = 1 if bad.prev_seq is None else bad.prev_seq + 1
    after = "the start" if bad.prev_seq is None else f"seq {bad.prev_seq}"
    other = seen.get(bad.prev_hash)
    if bad.prev_hash == bad.expected:
        return ChainProblem(
            bad.seq,
            ProblemKind.REORDERED,
            f"links correctly to {after} but seq jumps to {bad.seq}: seq values were rewritten",
        )
    if other is not None and other != bad.prev_seq:
        return ChainProblem(
            bad.seq,
            ProblemKind.REORDERED,
            f"links to seq {other}, not to {after}: records were moved",
        )
    if bad.prev_hash == GENESIS_HASH and bad.prev_seq is not None:
        return ChainProblem(bad.seq, ProblemKind.REORDERED, "links to the genesis but is not first")
    if bad.seq > expected_seq:
        missing = f"seq {expected_seq}" + (
            "" if bad.seq - 1 == expected_seq else f"..{bad.seq - 1}"
        )
        return ChainProblem(bad.seq, ProblemKind.DELETED, f"{missing} missing before seq {bad.seq}")
    return ChainProblem(
        bad.seq,
        ProblemKind.FORGED_LINK,
        f"links to a hash no record has (expected {after}): a predecessor was rewritten, "
        "or records were deleted and renumbered",
    )


def _pair_swaps(edited: list[LogEntry]) -> dict[int, int]:
    """seq -> seq where an edited slot's record hashes correctly in another edited slot.

    Swapping two rows' record_json leaves both slots failing their hash; each record still
    verifies in the other's slot, which tells a swap from two independent edits.
    """
    if len(edited) > _MAX_PAIRING:
        return {}
    moved: dict[int, int] = {}
    for entry in edited:
        for slot in edited:
            if slot is not entry and chain_hash(slot.prev_hash, entry.record_json) == slot.hash:
                moved[entry.seq] = slot.seq
                break
    return moved


def _content_problems(edited: list[LogEntry]) -> list[ChainProblem]:
    moved = _pair_swaps(edited)
    problems = []
    for entry in edited:
        if entry.seq in moved:
            message = f"holds the record of seq {moved[entry.seq]}: records were swapped"
            problems.append(ChainProblem(entry.seq, ProblemKind.REORDERED, message))
        else:
            message = "record does not match its hash: it was changed after it was written"
            problems.append(ChainProblem(entry.seq, ProblemKind.EDITED, message))
    return problems


def _head_problem(
    last: LogEntry | None, head: HeadAnchor, seen: Mapping[str, int]
) -> ChainProblem | None:
    """Compare the log's end with the anchor row, which is written with every append."""
    last_seq, last_hash = (0, GENESIS_HASH) if last is None else (last.seq, last.hash)
    if (last_seq, last_hash) == (head.seq, head.hash):
        return None
    if last_seq < head.seq:
        return ChainProblem(
            head.seq,
            ProblemKind.TRUNCATED,
            f"the head anchor is at seq {head.seq} but the log ends at {last_seq}",
        )
    if last_seq == head.seq:
        return ChainProblem(
            last_seq,
            ProblemKind.FORGED_LINK,
            "the last record's hash differs from the head anchor: the tail was rewritten",
        )
    where = "" if head.hash not in seen else f" (the anchor matches seq {seen[head.hash]})"
    return ChainProblem(
        last_seq,
        ProblemKind.FORGED_LINK,
        f"records after the anchored head seq {head.seq} were not appended through the log{where}",
    )


def _expected_problem(
    expect_head: str, last: LogEntry | None, seen: Mapping[str, int]
) -> ChainProblem | None:
    """A head hash recorded outside the database must still be somewhere in the chain."""
    if expect_head in seen or (expect_head == GENESIS_HASH and last is None):
        return None
    return ChainProblem(
        0 if last is None else last.seq,
        ProblemKind.FORGED_LINK,
        f"the expected head {expect_head} is not in the log: it was rewritten or truncated since",
    )


def verify_chain(
    entries: Iterable[LogEntry], head: HeadAnchor | None, *, expect_head: str | None = None
) -> ChainReport:
    """Check every record and link, in one pass over `entries` (which must come in seq order).

    `head` is the anchor row (None: not checked). `expect_head` is a head hash recorded
    outside the database earlier: it must still be one of the chain's hashes, which catches a
    chain rewritten wholesale together with its anchor row.
    """
    seen: dict[str, int] = {}
    edited: list[LogEntry] = []
    links: list[_BadLink] = []
    last, checked = _first_pass(entries, seen, edited, links)
    problems = _content_problems(edited) + [_classify_link(b, seen) for b in links]
    extra = [] if head is None else [_head_problem(last, head, seen)]
    if expect_head is not None:
        extra.append(_expected_problem(expect_head.strip().lower(), last, seen))
    problems += [p for p in extra if p is not None]
    problems.sort(key=lambda p: p.seq)
    anchor = None if last is None else HeadAnchor(last.seq, last.hash)
    return ChainReport(not problems, checked, tuple(problems), anchor)
