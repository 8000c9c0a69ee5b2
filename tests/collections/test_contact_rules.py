"""The contact engine, rule by rule, at its edges (REGULATION.md §8; contact_rules/cn-2026.toml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from importlib import resources

import pytest

from lendstack.collections import (
    Attempt,
    Channel,
    History,
    Party,
    Reason,
    check,
    default_pack,
    parse_enum,
    parse_pack,
)
from lendstack.core.errors import ValidationError

PACK = default_pack()
PACK_TEXT = (resources.files("lendstack.collections") / "contact_rules" / "cn-2026.toml").read_text(
    encoding="utf-8"
)
DAY = datetime(2026, 7, 1)


def attempt(hhmm: str, **kw: object) -> Attempt:
    hour, minute = (int(x) for x in hhmm.split(":"))
    values: dict[str, object] = {
        "loan_id": 1,
        "channel": Channel.CALL,
        "party": Party.DEBTOR,
        "at": DAY.replace(hour=hour, minute=minute),
        "number": "debtor",
    }
    values.update(kw)
    return Attempt(**values)  # type: ignore[arg-type]


def reasons(a: Attempt, history: History | None = None) -> set[Reason]:
    return {r.reason for r in check(a, history or History(), PACK).refusals}


@pytest.mark.parametrize(
    ("hhmm", "quiet"),
    [
        ("21:59", False),
        ("22:00", True),
        ("23:30", True),
        ("00:00", True),
        ("07:59", True),
        ("08:00", False),
        ("12:00", False),
    ],
)
def test_quiet_hours_edges(hhmm: str, quiet: bool) -> None:
    assert (Reason.QUIET_HOURS in reasons(attempt(hhmm))) is quiet
    # SMS is contact too: the rule covers every channel
    assert (Reason.QUIET_HOURS in reasons(attempt(hhmm, channel=Channel.SMS))) is quiet


def test_seconds_before_the_edge_are_still_allowed() -> None:
    late = attempt("21:59", at=DAY.replace(hour=21, minute=59, second=59))
    assert check(late, History(), PACK).allowed


def test_logged_debtor_consent_lifts_quiet_hours_but_not_for_others() -> None:
    assert check(attempt("22:00", consent=True), History(), PACK).allowed
    assert check(attempt("07:59", consent=True), History(), PACK).allowed
    unreachable = History(debtor_number_unreachable=True)
    emergency = attempt("22:30", party=Party.EMERGENCY, number="emergency", consent=True)
    assert reasons(emergency, unreachable) == {Reason.QUIET_HOURS}


def test_times_with_an_offset_are_judged_in_the_debtors_local_time() -> None:
    # 14:00 UTC is 22:00 in Shanghai; 23:59 at UTC-1 is 08:59 the next morning there.
    assert Reason.QUIET_HOURS in reasons(
        attempt("00:00", at=datetime(2026, 7, 1, 14, 0, tzinfo=UTC))
    )
    minus_one = timezone(timedelta(hours=-1))
    assert check(
        attempt("00:00", at=datetime(2026, 7, 1, 23, 59, tzinfo=minus_one)), History(), PACK
    ).allowed


@pytest.mark.parametrize(("before", "refused"), [(0, False), (5, False), (6, True), (9, True)])
def test_sixth_call_allowed_seventh_refused(before: int, refused: bool) -> None:
    history = History(unanswered_calls_today=before)
    assert (Reason.MAX_ATTEMPTS in reasons(attempt("10:00"), history)) is refused
    agency = attempt("10:00", channel=Channel.AGENCY_CALL)
    assert (Reason.MAX_ATTEMPTS in reasons(agency, history)) is refused


def test_the_call_limit_does_not_apply_to_messages() -> None:
    history = History(unanswered_calls_today=6)
    assert check(attempt("10:00", channel=Channel.SMS), history, PACK).allowed
    assert check(attempt("10:00", channel=Channel.PUSH), history, PACK).allowed


def test_unrelated_third_parties_are_never_contacted() -> None:
    third = attempt("10:00", party=Party.THIRD_PARTY, number="13800000000", consent=True)
    assert reasons(third, History(debtor_number_unreachable=True)) == {Reason.THIRD_PARTY}


def test_emergency_contact_only_when_the_debtor_is_unreachable() -> None:
    emergency = attempt("10:00", party=Party.EMERGENCY, number="emergency")
    n = PACK.unreachable_after
    assert reasons(emergency) == {Reason.DEBTOR_REACHABLE}
    tried_not_enough = History(debtor_attempts_in_window=n - 1)
    assert reasons(emergency, tried_not_enough) == {Reason.DEBTOR_REACHABLE}
    tried_enough = History(debtor_attempts_in_window=n)
    assert reasons(emergency, tried_enough) == set()
    answered_once = History(debtor_attempts_in_window=n + 3, debtor_answered_in_window=1)
    assert reasons(emergency, answered_once) == {Reason.DEBTOR_REACHABLE}
    assert reasons(emergency, History(debtor_number_unreachable=True)) == set()


def test_banned_channels_and_consent_only_channels() -> None:
    assert reasons(attempt("10:00", channel=Channel.PUBLIC_NOTICE)) == {Reason.BANNED_CHANNEL}
    assert reasons(attempt("10:00", channel=Channel.SOCIAL_APP, consent=True)) == {
        Reason.BANNED_CHANNEL
    }
    assert reasons(attempt("10:00", channel=Channel.VISIT)) == {Reason.CONSENT_REQUIRED}
    assert reasons(attempt("10:00", channel=Channel.VISIT, consent=True)) == set()


@pytest.mark.parametrize(
    "message",
    ["You will go to JAIL", "我们将通知你单位", "you are on our Blacklist", "快去借钱还我们"],
)
def test_banned_wording_is_refused_case_insensitively(message: str) -> None:
    verdict = check(attempt("10:00", channel=Channel.SMS, message=message), History(), PACK)
    assert [r.reason for r in verdict.refusals] == [Reason.BANNED_WORDING]
    assert verdict.refusals[0].rule_id == "CN.COLLECTION.BANNED_WORDING"


def test_polite_reminder_passes() -> None:
    msg = "Your installment of 500.00 is overdue; please pay or call us to agree a plan."
    assert check(attempt("10:00", channel=Channel.SMS, message=msg), History(), PACK).allowed


def test_every_refusal_names_its_rule_and_all_broken_rules_are_listed() -> None:
    bad = attempt("23:00", party=Party.THIRD_PARTY, channel=Channel.PUBLIC_NOTICE, message="police")
    verdict = check(bad, History(unanswered_calls_today=6), PACK)
    got = {r.reason: r.rule_id for r in verdict.refusals}
    assert got == {
        Reason.QUIET_HOURS: "CN.COLLECTION.QUIET_HOURS",
        Reason.THIRD_PARTY: "CN.COLLECTION.NO_UNRELATED_THIRD_PARTY",
        Reason.BANNED_CHANNEL: "CN.COLLECTION.BANNED_CHANNELS",
        Reason.BANNED_WORDING: "CN.COLLECTION.BANNED_WORDING",
    }  # public_notice is not a call channel, so the call limit does not apply


def test_pack_is_versioned_and_reads_its_limits_from_data() -> None:
    assert PACK.label == "cn-collection@2026.1"
    assert PACK.max_unanswered == 6
    text = PACK_TEXT.replace(
        "max_unanswered_per_number_per_day = 6", "max_unanswered_per_number_per_day = 3"
    )
    stricter = parse_pack(text, "stricter.toml")
    assert Reason.MAX_ATTEMPTS in {
        r.reason
        for r in check(attempt("10:00"), History(unanswered_calls_today=3), stricter).refusals
    }


def test_bad_pack_and_bad_enum_values_name_the_field() -> None:
    with pytest.raises(ValidationError) as bad:
        parse_pack(
            PACK_TEXT.replace('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"'), "x"
        )
    assert bad.value.field == "timezone"
    with pytest.raises(ValidationError) as missing:
        parse_pack(PACK_TEXT.replace("[wording]", "[wordings]"), "x")
    assert missing.value.field is not None
    with pytest.raises(ValidationError) as channel:
        parse_enum(Channel, "pigeon", "channel")
    assert channel.value.field == "channel"
