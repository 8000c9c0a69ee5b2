"""The compliant contact engine: every collection contact checked against a versioned rule pack.

A contact the rules forbid is *refused with reasons* (a value, never an exception and never a
silent drop): each `Refusal` names its reason code and the rule id that bound it, so the
contact log can show an auditor which rule stopped which attempt. The checks split in two:

- `static_refusals`: what the attempt itself says (channel, party, local time, consent,
  wording). The day's plan runs these once per strategy action.
- `history_refusals`: what the contact log says (unanswered calls to this number today,
  whether the debtor is reachable). The plan runs their vector form over a whole book.

`check` is both together for one attempt, as `lendstack collections record` uses it.
Rules and their sources: contact_rules/cn-2026.toml and REGULATION.md §8. Pure: no clock, no
I/O beyond reading the pack file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from lendstack.core.datafiles import load_toml, validated
from lendstack.core.errors import NotFound, ValidationError

E = TypeVar("E", bound=StrEnum)


class Channel(StrEnum):
    SMS = "sms"
    PUSH = "push"
    CALL = "call"
    AGENCY_CALL = "agency_call"
    EMAIL = "email"
    LETTER = "letter"
    VISIT = "visit"
    SOCIAL_APP = "social_app"
    PUBLIC_NOTICE = "public_notice"


class Party(StrEnum):
    DEBTOR = "debtor"
    EMERGENCY = "emergency"  # the pre-agreed emergency contact
    THIRD_PARTY = "third_party"  # anyone else: unrelated to the debt


class Outcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"  # number disconnected or invalid
    DELIVERED = "delivered"
    FAILED = "failed"


class Reason(StrEnum):
    QUIET_HOURS = "QUIET_HOURS"
    MAX_ATTEMPTS = "MAX_ATTEMPTS"
    THIRD_PARTY = "THIRD_PARTY"
    DEBTOR_REACHABLE = "DEBTOR_REACHABLE"
    BANNED_CHANNEL = "BANNED_CHANNEL"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"
    BANNED_WORDING = "BANNED_WORDING"


def parse_enum(kind: type[E], text: str, field: str) -> E:
    """`text` as a member of `kind`, or a ValidationError naming the field and the choices."""
    try:
        return kind(text)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise ValidationError(f"{text!r} is not one of: {known}", field=field) from None


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    rule_id: str
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"reason": self.reason.value, "rule_id": self.rule_id, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class RulePack:
    """The collection conduct rules in force, as read from a pack file."""

    pack_id: str
    version: str
    effective_from: date
    timezone: str
    quiet_start: time
    quiet_end: time
    max_unanswered: int
    call_channels: frozenset[Channel]
    unanswered_outcomes: frozenset[Outcome]
    unreachable_after: int
    window_days: int
    banned_channels: frozenset[Channel]
    consent_channels: frozenset[Channel]
    banned_phrases: tuple[str, ...]
    rule_ids: tuple[tuple[Reason, str], ...]

    @property
    def label(self) -> str:
        return f"{self.pack_id}@{self.version}"

    def rule(self, reason: Reason) -> str:
        return dict(self.rule_ids)[reason]

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def in_quiet_hours(self, local: time) -> bool:
        """[start, end) wrapping midnight: 22:00 is quiet, 21:59 and 08:00 are not."""
        if self.quiet_start > self.quiet_end:
            return local >= self.quiet_start or local < self.quiet_end
        return self.quiet_start <= local < self.quiet_end

    def banned_phrase_in(self, message: str) -> str | None:
        folded = message.casefold()
        return next((p for p in self.banned_phrases if p.casefold() in folded), None)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One contact attempt, planned or made; `at` is the debtor's local wall-clock time."""

    loan_id: int
    channel: Channel
    party: Party
    at: datetime
    number: str
    consent: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class History:
    """What the contact log says before the attempt (computed by storage, set-based)."""

    unanswered_calls_today: int = 0  # to this number, on the attempt's local day
    debtor_attempts_in_window: int = 0
    debtor_answered_in_window: int = 0
    debtor_number_unreachable: bool = False

    def debtor_unreachable(self, pack: RulePack) -> bool:
        if self.debtor_number_unreachable:
            return True
        tried = self.debtor_attempts_in_window >= pack.unreachable_after
        return tried and self.debtor_answered_in_window == 0


@dataclass(frozen=True, slots=True)
class Verdict:
    attempt: Attempt
    refusals: tuple[Refusal, ...]

    @property
    def allowed(self) -> bool:
        return not self.refusals


def local_time(at: datetime, pack: RulePack) -> datetime:
    """A naive `at` is already the debtor's local time; an aware one is converted to it."""
    zone = pack.zone()
    return at.replace(tzinfo=zone) if at.tzinfo is None else at.astimezone(zone)


def static_refusals(
    channel: Channel, party: Party, local: time, consent: bool, message: str, pack: RulePack
) -> tuple[Refusal, ...]:
    """The rules an attempt breaks by itself, whatever the log holds."""
    out: list[Refusal] = []
    if pack.in_quiet_hours(local) and not (consent and party is Party.DEBTOR):
        span = f"{pack.quiet_start:%H:%M}-{pack.quiet_end:%H:%M}"
        out.append(_refuse(pack, Reason.QUIET_HOURS, f"{local:%H:%M} is in quiet hours {span}"))
    if party is Party.THIRD_PARTY:
        out.append(_refuse(pack, Reason.THIRD_PARTY, "contact with unrelated third parties"))
    if channel in pack.banned_channels:
        out.append(_refuse(pack, Reason.BANNED_CHANNEL, f"channel {channel.value} is banned"))
    if channel in pack.consent_channels and not consent:
        detail = f"channel {channel.value} needs the debtor's logged consent"
        out.append(_refuse(pack, Reason.CONSENT_REQUIRED, detail))
    phrase = pack.banned_phrase_in(message)
    if phrase is not None:
        out.append(_refuse(pack, Reason.BANNED_WORDING, f"message contains {phrase!r}"))
    return tuple(out)


def history_refusals(
    channel: Channel, party: Party, history: History, pack: RulePack
) -> tuple[Refusal, ...]:
    """The rules an attempt breaks given the contact log so far."""
    out: list[Refusal] = []
    if channel in pack.call_channels and history.unanswered_calls_today >= pack.max_unanswered:
        detail = (
            f"{history.unanswered_calls_today} unanswered calls to this number today;"
            f" at most {pack.max_unanswered}"
        )
        out.append(_refuse(pack, Reason.MAX_ATTEMPTS, detail))
    if party is Party.EMERGENCY and not history.debtor_unreachable(pack):
        detail = "emergency contacts only when the debtor cannot be reached"
        out.append(_refuse(pack, Reason.DEBTOR_REACHABLE, detail))
    return tuple(out)


def check(attempt: Attempt, history: History, pack: RulePack) -> Verdict:
    """Every rule the attempt breaks (an empty tuple means it is allowed)."""
    local = local_time(attempt.at, pack).time()
    found = static_refusals(
        attempt.channel, attempt.party, local, attempt.consent, attempt.message, pack
    )
    found += history_refusals(attempt.channel, attempt.party, history, pack)
    return Verdict(attempt, found)


def _refuse(pack: RulePack, reason: Reason, detail: str) -> Refusal:
    return Refusal(reason, pack.rule(reason), detail)


# --- the pack file -----------------------------------------------------------------------


class _Rule(BaseModel):
    model_config = ConfigDict(extra="allow")
    rule_id: str
    status: str
    confidence: str
    source: str


class _Quiet(_Rule):
    start: time
    end: time
    unless: str


class _Calls(_Rule):
    max_unanswered_per_number_per_day: int = Field(ge=1)
    call_channels: list[Channel]
    unanswered_outcomes: list[Outcome]


class _Emergency(_Rule):
    unreachable_after_attempts: int = Field(ge=1)
    window_days: int = Field(ge=1)


class _Channels(_Rule):
    banned: list[Channel]
    consent_required: list[Channel]


class _Wording(_Rule):
    banned_phrases: list[str]


class _PackFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    version: str
    effective_from: date
    timezone: str
    quiet_hours: _Quiet
    call_attempts: _Calls
    third_parties: _Rule
    emergency_contacts: _Emergency
    channels: _Channels
    wording: _Wording


def parse_pack(text: str, source: str) -> RulePack:
    raw = validated(_PackFile, load_toml(text, source), source)
    try:
        ZoneInfo(raw.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"{source}: unknown timezone {raw.timezone!r}", field="timezone"
        ) from exc
    return RulePack(
        raw.id,
        raw.version,
        raw.effective_from,
        raw.timezone,
        raw.quiet_hours.start,
        raw.quiet_hours.end,
        raw.call_attempts.max_unanswered_per_number_per_day,
        frozenset(raw.call_attempts.call_channels),
        frozenset(raw.call_attempts.unanswered_outcomes),
        raw.emergency_contacts.unreachable_after_attempts,
        raw.emergency_contacts.window_days,
        frozenset(raw.channels.banned),
        frozenset(raw.channels.consent_required),
        tuple(p for p in raw.wording.banned_phrases if p.strip()),
        _rule_ids(raw),
    )


def _rule_ids(raw: _PackFile) -> tuple[tuple[Reason, str], ...]:
    return (
        (Reason.QUIET_HOURS, raw.quiet_hours.rule_id),
        (Reason.MAX_ATTEMPTS, raw.call_attempts.rule_id),
        (Reason.THIRD_PARTY, raw.third_parties.rule_id),
        (Reason.DEBTOR_REACHABLE, raw.emergency_contacts.rule_id),
        (Reason.BANNED_CHANNEL, raw.channels.rule_id),
        (Reason.CONSENT_REQUIRED, raw.channels.rule_id),
        (Reason.BANNED_WORDING, raw.wording.rule_id),
    )


def load_pack(path: Path | str) -> RulePack:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read collection rule pack {path}: {exc}", field="rules") from exc
    return parse_pack(text, str(path))


@functools.cache
def default_pack() -> RulePack:
    """The shipped pack (contact_rules/cn-2026.toml), read once."""
    item = resources.files("lendstack.collections") / "contact_rules" / "cn-2026.toml"
    return parse_pack(item.read_text(encoding="utf-8"), "contact_rules/cn-2026.toml")


def pack_json(pack: RulePack) -> dict[str, Any]:
    return {"id": pack.pack_id, "version": pack.version, "timezone": pack.timezone}
