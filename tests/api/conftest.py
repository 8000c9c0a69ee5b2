"""An API over a real migrated database (SQLite, and PostgreSQL when configured), one booked
loan, and one key per role."""

from __future__ import annotations

import pytest
from apitools import Api, FakeClock, book
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from lendstack.api import create_app
from lendstack.servicing import ProductCatalog
from lendstack.settings import Settings
from lendstack.storage.apikeys import Role, SqlApiKeys


@pytest.fixture
def api(engine: Engine, catalog: ProductCatalog) -> Api:
    keys = SqlApiKeys(engine)
    issued = {
        "risk": keys.create(Role.RISK)[0],
        "regulator": keys.create(Role.REGULATOR)[0],
        "channel": keys.create(Role.CHANNEL, channel="alipay")[0],
        "partner": keys.create(Role.PARTNER, partner_id="bank-a")[0],
    }
    clock = FakeClock()
    app = create_app(Settings(database_url="unused://"), engine=engine, clock=clock)
    return Api(TestClient(app), engine, clock, book(engine, catalog), issued)
