"""HTTP API: `create_app(settings)` builds the FastAPI service; no app exists at import time."""
