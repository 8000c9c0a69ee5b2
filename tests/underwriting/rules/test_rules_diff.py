"""diff_packs: added, removed and changed rules with old → new per field."""

from __future__ import annotations

from datetime import date

from lendstack.underwriting.rules import ChangeKind, FieldChange, diff_packs, load_pack


def test_added_removed_changed_and_unchanged(pack, rule):
    a = pack(
        [
            rule("T.APR.SAME", params={"max": 200000}, kind="credit_line_max"),
            rule("T.APR.GONE"),
            rule("T.APR.EDIT", params={"max": "0.24"}, status="guidance"),
        ]
    )
    b = pack(
        [
            rule("T.APR.EDIT", params={"max": "0.20"}, status="final", enabled=False),
            rule("T.APR.SAME", params={"max": "200000.00"}, kind="credit_line_max"),
            rule("T.APR.NEW", effective_to=date(2030, 1, 1)),
        ],
        version="2.0.0",
    )
    changes = diff_packs(a, b)
    assert [(c.rule_id, c.change) for c in changes] == [
        ("T.APR.EDIT", ChangeKind.CHANGED),
        ("T.APR.GONE", ChangeKind.REMOVED),
        ("T.APR.NEW", ChangeKind.ADDED),
    ]
    assert changes[0].fields == (
        FieldChange("params.max", "0.24", "0.20"),
        FieldChange("status", "guidance", "final"),
        FieldChange("enabled", "true", "false"),
    )


def test_diff_with_itself_is_empty_and_direction_matters():
    old, new = load_pack("cn-2024-07"), load_pack("cn-2025-10")
    assert diff_packs(new, new) == ()
    forward = {c.rule_id: c.change for c in diff_packs(old, new)}
    backward = {c.rule_id: c.change for c in diff_packs(new, old)}
    assert forward["CN.PRICING.MAX_COMPREHENSIVE_APR.BANK"] is ChangeKind.ADDED
    assert backward["CN.PRICING.MAX_COMPREHENSIVE_APR.BANK"] is ChangeKind.REMOVED
    notice = next(
        c
        for c in diff_packs(old, new)
        if c.rule_id == "CN.PURPOSE.FORBIDDEN.MICROLENDER.NOTICE2020"
    )
    assert notice.fields == (FieldChange("effective_to", None, "2024-12-31"),)


def test_source_changes_are_reported(pack, rule):
    a = pack([rule()])
    b = pack(
        [rule(source={"body": "NFRA", "document": "test document", "section": "REGULATION.md 0"})]
    )
    (change,) = diff_packs(a, b)
    assert change.fields == (FieldChange("source.body", "TEST", "NFRA"),)
