"""HTTP API: `create_app(settings)` builds the FastAPI service; no app exists at import time."""

from lendstack.api.app import create_app

__all__ = ["create_app"]
