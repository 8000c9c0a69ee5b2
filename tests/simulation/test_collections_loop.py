"""Collections in the loop: behaviour answers contacts, the hook works the book for real."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from lendstack.core.errors import ValidationError
from lendstack.simulation import RunConfig, load_scenario, parse_scenario, simulate_run
from lendstack.simulation.behaviour import CONTACT_EFFECT_DAYS, Contact, cure_draw
from lendstack.simulation.scenario import Behaviour, Collections, Scenario

BASE = Scenario("t")


def _scenario(cure: float, lift: float, keep: float = 0.5) -> Scenario:
    return replace(
        BASE,
        behaviour=Behaviour(cure_rate=cure),
        collections=Collections(contact_lift=lift, promise_keep=keep),
    )


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    loan=st.integers(1, 10**6),
    due=st.integers(19_000, 21_000),
    late=st.integers(1, 200),
    cure=st.floats(0.0, 1.0),
    lift=st.floats(1.0, 10.0),
    since=st.integers(0, CONTACT_EFFECT_DAYS),
)
def test_a_contact_never_stops_a_cure(
    seed: int, loan: int, due: int, late: int, cure: float, lift: float, since: int
) -> None:
    scenario = _scenario(cure, lift)
    contact = Contact(due + late - since)
    plain = cure_draw(seed, loan, due, late, scenario)
    assert not plain or cure_draw(seed, loan, due, late, scenario, contact)
    if late % 30 or late > 180:  # cures only at the 30-day marks (no promise here)
        assert not cure_draw(seed, loan, due, late, scenario, contact)


def _rate(late: int, scenario: Scenario, contact_at: int | None, promise: bool = False) -> float:
    due = 20_000
    n = 20_000
    hits = 0
    for loan in range(n):
        contact = None
        if contact_at is not None:
            day = due + late - contact_at
            contact = Contact(day, due + late if promise else None)
        hits += cure_draw(3, loan, due, late, scenario, contact)
    return hits / n


def test_contacted_borrowers_cure_at_the_lifted_rate() -> None:
    scenario = _scenario(0.15, 2.0)
    # 20,000 draws: the standard error is about 0.003, so ±0.015 is five of them
    assert _rate(30, scenario, None) == pytest.approx(0.15, abs=0.015)
    assert _rate(30, scenario, 10) == pytest.approx(0.30, abs=0.015)
    assert _rate(120, scenario, 10) == pytest.approx(0.15, abs=0.015)  # halved after 90 DPD
    # a contact older than the effect window no longer helps
    assert _rate(60, scenario, CONTACT_EFFECT_DAYS + 1) == pytest.approx(0.15, abs=0.015)


def test_a_promiser_pays_on_the_promise_date_with_the_keep_rate() -> None:
    scenario = _scenario(0.15, 2.0, keep=0.6)
    assert _rate(37, scenario, 7, promise=True) == pytest.approx(0.6, abs=0.015)
    assert _rate(37, scenario, 7, promise=False) == 0.0  # not a 30-day mark, no promise


def test_collections_table_is_validated() -> None:
    s = parse_scenario('name = "c"\n[collections]\ncontact_lift = 3.0\nenabled = true\n')
    assert s.collections == Collections(enabled=True, contact_lift=3.0)
    assert parse_scenario('name = "d"').collections.enabled is True
    assert load_scenario("baseline").collections.enabled is True
    shipped = load_scenario("no-collections")
    assert shipped.collections.enabled is False
    assert shipped.behaviour == load_scenario("baseline").behaviour
    for body, field in (
        ("colour = 1", "collections.colour"),
        ("contact_lift = 0.5", "collections.contact_lift"),
        ("answer_rate = 1.5", "collections.answer_rate"),
        ('enabled = "yes"', "collections.enabled"),
        ("promise_days = 0", "collections.promise_days"),
    ):
        with pytest.raises(ValidationError) as err:
            parse_scenario(f'name = "x"\n[collections]\n{body}\n')
        assert err.value.field == field


BAD_MARKET = """
name = "bad-market-{on}"
[behaviour]
miss_scale = 20.0
[collections]
enabled = {on}
contact_lift = 4.0
promise_keep = 0.8
"""


@pytest.mark.slow
def test_the_hook_logs_compliant_contacts_and_promises_and_lifts_cures(tmp_path: Path) -> None:
    config = RunConfig(borrowers=800, months=7, npl_sale=False)
    runs = {}
    for on in ("true", "false"):
        out = tmp_path / on
        runs[on] = simulate_run(parse_scenario(BAD_MARKET.format(on=on)), config, out)
    monthly = runs["true"]["monthly"]
    contacts = sum(m["contacts"] for m in monthly)
    promises = sum(m["promises"] for m in monthly)
    assert contacts > 0
    assert promises > 0
    engine = create_engine(f"sqlite:///{tmp_path / 'true' / 'lendstack.db'}")
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT COUNT(*), SUM(allowed) FROM collection_contacts")).one()
        times = conn.execute(text("SELECT DISTINCT local_time FROM collection_contacts")).all()
        stored = conn.execute(text("SELECT status, COUNT(*) FROM promises_to_pay GROUP BY status"))
        by_status = dict(stored.all())
        days = conn.execute(text("SELECT DISTINCT local_day FROM collection_contacts")).all()
    engine.dispose()
    assert logged[0] == logged[1] == contacts  # the plan is compliant: nothing refused
    assert all("08:00" <= t < "22:00" for (t,) in times)  # never in quiet hours
    assert all(str(d).endswith("-01") for (d,) in days)  # the open date after each month-end
    assert sum(by_status.values()) == promises
    kept = sum(m["collections"].get("promises_kept", 0) for m in monthly)
    assert kept == by_status.get("kept", 0)
    off = runs["false"]["monthly"]
    assert sum(m["contacts"] + m["promises"] for m in off) == 0
    assert sum(m["cured"] for m in monthly) > sum(m["cured"] for m in off)
