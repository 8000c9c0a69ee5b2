"""One calibration-sized population per test session (per xdist worker): 20,000 applicants."""

from __future__ import annotations

import pytest

from lendstack.underwriting.application import Application
from lendstack.underwriting.population import Population, PopulationConfig, generate_population


@pytest.fixture(scope="session")
def population() -> Population:
    return generate_population(PopulationConfig(seed=7, n=20_000))


@pytest.fixture(scope="session")
def applications(population: Population) -> list[Application]:
    """Every application, validated by the schema (a failure here is a generator bug)."""
    return [Application.model_validate(a) for a in population.applications()]
