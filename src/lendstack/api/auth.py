"""Bearer API keys: who is calling, and may they do this.

Key look-ups are cached in-process for `ttl` seconds (5 by default) so authentication costs no
database round trip per request under load. The price: a revoked key keeps working for up to
`ttl` seconds in each worker process that saw it recently.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lendstack.core.errors import LendstackError
from lendstack.storage.apikeys import ApiKey, Role, SqlApiKeys, hash_key

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_CACHED = 10_000


class Unauthorized(LendstackError):
    http_status = 401
    title = "Unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - read-only class constant


class Forbidden(LendstackError):
    http_status = 403
    title = "Forbidden"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its API key describes it."""

    key_prefix: str
    role: Role
    channel: str | None = None
    partner_id: str | None = None


class KeyCache:
    """Presented key digest -> principal (or None for unknown/revoked), for `ttl` seconds."""

    def __init__(
        self, keys: SqlApiKeys, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.keys, self.ttl, self.clock = keys, ttl, clock
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def principal(self, key: str) -> Principal | None:
        digest, now = hash_key(key), self.clock()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = _principal(self.keys.find(key))
        if len(self._entries) >= MAX_CACHED:
            self._entries.clear()  # bounded: random wrong keys cannot grow memory forever
        self._entries[digest] = (now + self.ttl, found)
        return found


def _principal(key: ApiKey | None) -> Principal | None:
    if key is None or not key.active:
        return None
    return Principal(key.prefix, key.role, key.channel, key.partner_id)


bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey", description="`Authorization: Bearer lsk_…`"
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The authenticated caller. Regulators are read-only everywhere, whatever the route allows."""
    if credentials is None:
        raise Unauthorized("send `Authorization: Bearer <api key>`")
    cache: KeyCache = request.app.state.key_cache
    principal = cache.principal(credentials.credentials)
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    if principal.role is Role.REGULATOR and request.method not in READ_METHODS:
        raise Forbidden("regulator keys are read-only")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only `roles`; use as `Depends(require(Role.RISK))`."""
    allowed = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(allowed))
            raise Forbidden(f"the {principal.role} role may not do this (allowed: {names})")
        return principal

    return check


__all__ = [
    "CurrentPrincipal",
    "Forbidden",
    "KeyCache",
    "Principal",
    "Unauthorized",
    "current_principal",
    "require",
]
