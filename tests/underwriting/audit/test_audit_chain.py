"""The pure chain: every kind of tampering is caught and named, at the right seq."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.underwriting import audit
from lendstack.underwriting.audit import (
    GENESIS_HASH,
    HeadAnchor,
    LogEntry,
    ProblemKind,
    canonical_json,
    chain_hash,
    seal,
    verify_chain,
)


def build(n: int) -> list[LogEntry]:
    entries: list[LogEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        entry = seal(seq, "decision", f"d{seq}", canonical_json({"n": seq, "x": "甲"}), prev)
        entries.append(entry)
        prev = entry.hash
    return entries


def anchor(entries: list[LogEntry]) -> HeadAnchor:
    return HeadAnchor(entries[-1].seq, entries[-1].hash)


def kinds(report) -> list[tuple[int, ProblemKind]]:
    return [(p.seq, p.kind) for p in report.problems]


class Colour(StrEnum):
    RED = "red"


def test_canonical_json_is_byte_stable_and_typed():
    value = {"b": Decimal("1.10"), "a": (1, 2), "d": date(2026, 1, 2), "c": Colour.RED}
    assert canonical_json(value) == '{"a":[1,2],"b":"1.10","c":"red","d":"2026-01-02"}'
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert canonical_json({"t": moment, "s": "张"}) == '{"s":"张","t":"2026-01-02T03:04:05+00:00"}'
    with pytest.raises(TypeError):
        canonical_json({"x": object()})
    with pytest.raises(TypeError):
        canonical_json({"x": {1, 2}})


def _json_module_text(value: object) -> str:
    """What `canonical_json` wrote before it used orjson: the json module's canonical text."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=audit._encode
    )


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # past 64 bits: the json module's text
    | st.text()  # lone surrogates included: the json module's text too
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.dates()
    | st.datetimes(timezones=st.none() | st.just(UTC))
    | st.sampled_from(Colour)
)
_keys = st.text() | st.integers(min_value=-5, max_value=5)  # a key that is not text, too
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=12,
)


def _written(write: Callable[[object], str], value: object) -> str | type[Exception]:
    try:
        return write(value)
    except TypeError as exc:  # e.g. keys of text and numbers together: they do not sort
        return type(exc)


@given(_values)
def test_canonical_json_is_the_json_modules_text_for_every_value_without_floats(value):
    assert _written(canonical_json, value) == _written(_json_module_text, value)


def test_nesting_deeper_than_orjson_goes_takes_the_json_modules_text():
    value: object = {"leaf": Decimal("1.10")}
    for _ in range(300):  # orjson stops at 254 levels
        value = [value]
    assert canonical_json(value) == _json_module_text(value)


def test_a_float_subclass_is_written_as_a_float():
    value = {"pd": np.float64(0.125), "tiny": np.float64(0.5e-3)}
    assert canonical_json(value) == _json_module_text(value) == '{"pd":0.125,"tiny":0.0005}'
    with pytest.raises(TypeError):
        canonical_json({"n": np.int64(3)})  # not an int: refused, as the json module did


@given(
    st.dictionaries(
        st.text(max_size=3),
        st.floats(allow_nan=False, allow_infinity=False) | _scalars,
        max_size=6,
    )
)
def test_a_float_is_written_as_the_same_number(value):
    """orjson writes a float outside [1e-4, 1e16) its own way; it reads back the same."""
    text = canonical_json(value)
    assert json.loads(text) == json.loads(_json_module_text(value))
    assert canonical_json(json.loads(text)) == text


def test_chain_hash_depends_on_the_predecessor():
    assert chain_hash(GENESIS_HASH, "{}") != chain_hash("1" * 64, "{}")
    assert len(chain_hash(GENESIS_HASH, "{}")) == 64


def test_intact_chain_verifies_against_its_anchor():
    entries = build(10)
    report = verify_chain(entries, anchor(entries))
    assert report.ok
    assert report.checked == 10
    assert report.problems == ()
    assert report.last == anchor(entries)


def test_empty_log_verifies_against_the_empty_anchor():
    assert verify_chain([], HeadAnchor(0, GENESIS_HASH)).ok
    assert verify_chain([], None).ok


def test_an_edited_record_is_named_at_its_seq():
    entries = build(10)
    entries[4] = dataclasses.replace(entries[4], record_json='{"n":5,"x":"乙"}')
    report = verify_chain(entries, anchor(entries))
    assert kinds(report) == [(5, ProblemKind.EDITED)]


def test_an_edited_and_rehashed_record_breaks_the_next_link():
    entries = build(10)
    forged = seal(5, "decision", "d5", '{"n":5,"x":"乙"}', entries[3].hash)
    entries[4] = forged
    report = verify_chain(entries, anchor(entries))
    assert kinds(report) == [(6, ProblemKind.FORGED_LINK)]


def test_a_deleted_middle_record_is_named():
    entries = build(10)
    del entries[4]
    report = verify_chain(entries, anchor(entries))
    assert kinds(report) == [(6, ProblemKind.DELETED)]
    assert "seq 5 missing" in report.problems[0].message


def test_deleting_the_first_record_is_named():
    entries = build(5)[1:]
    assert kinds(verify_chain(entries, anchor(entries))) == [(2, ProblemKind.DELETED)]


def test_swapped_positions_are_reordered_not_deleted():
    entries = build(10)
    a, b = entries[3], entries[4]  # seq 4 and 5 swap their seq values
    entries[3] = dataclasses.replace(b, seq=4)
    entries[4] = dataclasses.replace(a, seq=5)
    report = verify_chain(entries, anchor(entries))
    assert report.problems
    assert {k for _, k in kinds(report)} == {ProblemKind.REORDERED}
    assert {s for s, _ in kinds(report)} <= {4, 5, 6}


def test_swapped_record_bodies_are_reordered():
    entries = build(10)
    a, b = entries[2], entries[7]
    entries[2] = dataclasses.replace(a, record_json=b.record_json, decision_id=b.decision_id)
    entries[7] = dataclasses.replace(b, record_json=a.record_json, decision_id=a.decision_id)
    report = verify_chain(entries, anchor(entries))
    assert kinds(report) == [(3, ProblemKind.REORDERED), (8, ProblemKind.REORDERED)]
    assert "seq 8" in report.problems[0].message


def test_dropping_the_tail_is_truncation_against_the_anchor():
    entries = build(10)
    head = anchor(entries)
    report = verify_chain(entries[:-1], head)
    assert kinds(report) == [(10, ProblemKind.TRUNCATED)]
    assert verify_chain(entries[:-1], None).ok  # without an anchor it cannot be seen


def test_a_rewritten_tail_disagrees_with_the_anchor():
    entries = build(5)
    head = anchor(entries)
    entries[-1] = seal(5, "decision", "d5", '{"n":5,"x":"乙"}', entries[3].hash)
    assert kinds(verify_chain(entries, head)) == [(5, ProblemKind.FORGED_LINK)]


def test_records_beyond_the_anchor_are_flagged():
    entries = build(5)
    report = verify_chain(entries, HeadAnchor(4, entries[3].hash))
    assert kinds(report) == [(5, ProblemKind.FORGED_LINK)]


def test_a_whole_rewrite_is_caught_only_by_an_external_head():
    original = build(5)
    recorded = original[2].hash  # an operator wrote this down after seq 3
    rewritten: list[LogEntry] = original[:1]
    for old in original[1:]:
        rewritten.append(
            seal(old.seq, old.kind, old.decision_id, old.record_json + " ", rewritten[-1].hash)
        )
    assert verify_chain(rewritten, anchor(rewritten)).ok
    report = verify_chain(rewritten, anchor(rewritten), expect_head=recorded)
    assert kinds(report) == [(5, ProblemKind.FORGED_LINK)]
    assert verify_chain(original, anchor(original), expect_head=recorded).ok


@given(
    st.integers(min_value=0, max_value=7),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=255),
)
def test_any_single_byte_change_is_detected(which, position, delta):
    entries = build(8)
    raw = bytearray(entries[which].record_json.encode())
    i = position % len(raw)
    raw[i] = (raw[i] + delta) % 256
    text = raw.decode("utf-8", errors="surrogateescape")
    entries[which] = dataclasses.replace(entries[which], record_json=text)
    report = verify_chain(entries, anchor(entries))
    assert kinds(report) == [(which + 1, ProblemKind.EDITED)]
