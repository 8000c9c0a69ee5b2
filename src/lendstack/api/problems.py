"""RFC 9457 problem+json: every error the API returns, in one shape.

The error tree carries its own HTTP status and title, so translating it is one handler.
Validation errors name each bad field by its dotted location and keep pydantic's message, but
never the rejected input: request bodies hold personal data that must not be echoed or logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lendstack.core.errors import LendstackError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("lendstack.api")

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "in": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status"],
}


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    field: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if field is not None:
        body["field"] = field
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _location(loc: Sequence[str | int]) -> tuple[str, str]:
    """("body", "applicant", "resident_id") -> ("body", "applicant.resident_id")."""
    where = str(loc[0]) if loc else "body"
    rest = [str(part) for part in loc[1:]]
    return where, ".".join(rest) if rest else where


def validation_errors(raw: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's errors without `input` or `ctx`, so no submitted value is ever echoed."""
    out = []
    for err in raw:
        where, field = _location(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            field = "body"  # the location is a character offset, not a field
        out.append({"field": field, "in": where, "message": err["msg"], "type": err["type"]})
    return out


async def _lendstack_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LendstackError)
    if exc.http_status >= 500:
        log.error("request failed: %s", exc, exc_info=exc)
    headers = getattr(exc, "headers", None)
    return problem(exc.http_status, exc.title, exc.message, field=exc.field, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    for hook in getattr(request.app.state, "invalid_input_hooks", ()):
        hook(request, exc)
    errors = validation_errors(exc.errors())
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid input", detail, errors=errors)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    """Lost connections and SQLite lock time-outs: retryable, so 503 rather than a bare 500."""
    log.error("database error", exc_info=exc)
    return problem(503, "Database unavailable", "the database is unreachable or busy; retry")


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "the server failed; the error has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(LendstackError, _lendstack_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(Exception, _unhandled)


_TITLES = {
    400: "Bad request",
    401: "Missing, unknown or revoked API key",
    403: "The key's role may not do this",
    404: "Not found",
    409: "Conflicts with stored state",
    422: "Invalid input; `errors` names each field",
    503: "Database unavailable",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json bodies for `codes`."""
    return {
        code: {"description": _TITLES[code], "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}
        for code in codes
    }


__all__ = ["MEDIA_TYPE", "PROBLEM_SCHEMA", "install", "problem", "responses", "validation_errors"]
