"""monitoring_tables over a real decision log and book (SQLite; PostgreSQL in CI).

The population is built so every figure is known by hand: 20 men approved, 20 women of whom
10 asked for a forbidden purpose (declined); 3 of 30 booked loans go 90+ DPD inside a year.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from sqlalchemy import Engine, select

from lendstack.core.errors import ValidationError
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage import schema
from lendstack.storage.model_monitoring import age_band, monitoring_tables
from risk.monitoring_book import DAY, Applicant, book, decide, panel, pii_settings, service_for

END = date(2027, 12, 31)


@pytest.fixture
def settings() -> Settings:
    return pii_settings()


@pytest.fixture
def populated(engine: Engine, settings: Settings, catalog: ProductCatalog) -> dict[str, int]:
    service = service_for(settings, engine)
    people = [Applicant(True, date(1990, 1, 1), False) for _ in range(20)]
    people += [Applicant(False, date(1980, 1, 1), i % 2 == 0) for i in range(20)]
    booked = []
    for i, person in enumerate(people):
        recorded = decide(service, i, person)
        if recorded.outcome == "APPROVE":
            booked.append(book(engine, catalog, recorded))
    for n, loan_id in enumerate(booked):
        panel(engine, loan_id, 12, 6 if n in (0, 1, 25) else None)
    return {"booked": len(booked)}


def _mann_whitney_auc(pd_: list[float], bad: list[int]) -> float:
    """AUC by counting pairs: independent of the code under test."""
    pos = [p for p, b in zip(pd_, bad, strict=True) if b]
    neg = [p for p, b in zip(pd_, bad, strict=True) if not b]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def test_fairness_rates_air_and_flag(
    engine: Engine, settings: Settings, populated: dict[str, int]
) -> None:
    assert populated["booked"] == 30
    tables = monitoring_tables(engine, DAY, END, settings=settings, resamples=400)
    json.dumps(tables)  # plain JSON values only
    gender = {r["group"]: r for r in tables["fairness"] if r["attribute"] == "gender"}
    assert gender["male"]["applications"] == 20
    assert gender["male"]["approval_rate"] == 1.0
    assert gender["female"]["approval_rate"] == 0.5
    assert gender["female"]["air"] == 0.5
    assert gender["female"]["flagged"] is True
    assert gender["male"]["flagged"] is False
    low, high = gender["female"]["approval_low"], gender["female"]["approval_high"]
    assert low < 0.5 < high
    # defaults: loans 0 and 1 (men), loan 25 (a woman: booked 21st onwards are women)
    assert gender["male"]["matured"] == 20
    assert gender["male"]["defaulted"] == 2
    assert gender["female"]["matured"] == 10
    assert gender["female"]["defaulted"] == 1
    ages = {r["group"] for r in tables["fairness"] if r["attribute"] == "age_band"}
    assert ages == {age_band(36), age_band(46)} == {"35-44", "45-54"}
    text = json.dumps(tables)
    assert "440305" not in text  # no resident ID (nor any fragment of it) in the output


def test_psi_bands_and_performance_against_the_book(
    engine: Engine, settings: Settings, populated: dict[str, int]
) -> None:
    tables = monitoring_tables(engine, DAY, END, settings=settings, resamples=400)
    (score,) = tables["score_psi"]
    # one applicant profile repeated 40 times against a spread-out training population
    assert score["psi"] > 0.25
    assert score["band"] == "shift"
    assert {r["name"] for r in tables["feature_psi"]} >= {"age", "monthly_income"}
    for row in tables["feature_psi"]:
        expected = "stable" if row["psi"] < 0.10 else "watch" if row["psi"] < 0.25 else "shift"
        assert row["band"] == expected
    perf = {r["metric"]: r for r in tables["performance"] if r["kind"] == "summary"}
    assert perf["default_rate"]["observed"] == pytest.approx(3 / 30)
    assert perf["default_rate"]["loans"] == 30
    with engine.connect() as conn:
        query = select(schema.loan_profiles.c.loan_id, schema.loan_profiles.c.pd_origination)
        pds = {row[0]: row[1] for row in conn.execute(query)}
    ordered = [pds[k] for k in sorted(pds)]
    bad = [1 if n in (0, 1, 25) else 0 for n in range(30)]
    assert perf["mean_pd"]["observed"] == pytest.approx(float(np.mean(ordered)))
    assert perf["auc"]["observed"] == pytest.approx(_mann_whitney_auc(ordered, bad))
    assert perf["auc"]["reference"] == pytest.approx(0.8656256620492322)  # the model card
    deciles = [r for r in tables["performance"] if r["kind"] == "decile"]
    assert sum(r["loans"] for r in deciles) == 30


def test_loans_not_yet_matured_are_left_out(
    engine: Engine, settings: Settings, populated: dict[str, int]
) -> None:
    tables = monitoring_tables(
        engine, DAY, END, settings=settings, horizon_months=13, resamples=400
    )
    perf = {r["metric"]: r for r in tables["performance"] if r["kind"] == "summary"}
    assert perf["default_rate"]["loans"] == 3  # only the bad ones are observable at 13 months


def test_without_the_pii_key_groups_are_unknown_and_psi_uses_recorded_pds(
    engine: Engine, settings: Settings, populated: dict[str, int], tmp_path: object
) -> None:
    keyless = Settings(pii_key_file=tmp_path / "absent.key")  # type: ignore[operator]
    tables = monitoring_tables(engine, DAY, END, settings=keyless, resamples=400)
    assert tables["feature_psi"] == []
    assert tables["score_psi"][0]["pd_source"] == "recorded"
    gender = {r["group"] for r in tables["fairness"] if r["attribute"] == "gender"}
    assert gender == {"unknown"}
    province = [r for r in tables["fairness"] if r["attribute"] == "province"]
    assert province[0]["group"] == "Guangdong"
    assert province[0]["applications"] == 40


def test_bad_window_names_the_field(engine: Engine, settings: Settings) -> None:
    with pytest.raises(ValidationError) as err:
        monitoring_tables(engine, END, DAY, settings=settings)
    assert err.value.field == "end"


def test_empty_window_gives_empty_tables(engine: Engine, settings: Settings) -> None:
    tables = monitoring_tables(engine, DAY, END, settings=settings, resamples=400)
    assert tables["score_psi"] == []
    assert tables["fairness"] == []
    assert set(tables) == {"score_psi", "feature_psi", "performance", "fairness"}
