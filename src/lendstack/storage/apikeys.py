"""API keys: who may call the HTTP API, as which role. Only a key's SHA-256 is ever stored.

A key is `lsk_` plus 32 random bytes (URL-safe base64). It is shown once, when created; the
database keeps its digest and a short prefix so people can tell keys apart and revoke one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.engine import Row

from lendstack.core.errors import Conflict, InvariantViolation, NotFound, ValidationError
from lendstack.storage.schema import api_keys

KEY_MARK = "lsk_"
PREFIX_LENGTH = 12  # "lsk_" + 8 characters; fits api_keys.prefix


class Role(StrEnum):
    """What a key may do. Checked by the HTTP API on every request."""

    CHANNEL = "channel"  # submits applications, sees only its own decisions
    RISK = "risk"  # sees and does everything
    REGULATOR = "regulator"  # read-only
    PARTNER = "partner"  # scoped to one partner bank's loans


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    prefix: str
    role: Role
    channel: str | None
    partner_id: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_MARK + secrets.token_urlsafe(32)


def check_scope(role: Role, channel: str | None, partner_id: str | None) -> None:
    """A channel key names its channel and a partner key its bank; no other role takes either."""
    if role is Role.CHANNEL and not channel:
        raise ValidationError("a channel key needs a channel", field="channel")
    if role is Role.PARTNER and not partner_id:
        raise ValidationError("a partner key needs a partner id", field="partner")
    if channel and role is not Role.CHANNEL:
        raise ValidationError(f"only channel keys take a channel, not {role}", field="channel")
    if partner_id and role is not Role.PARTNER:
        raise ValidationError(f"only partner keys take a partner id, not {role}", field="partner")


_BY_DIGEST = select(api_keys).where(api_keys.c.key_sha256 == bindparam("digest"))


def _from_row(row: Row[tuple[object, ...]]) -> ApiKey:
    return ApiKey(
        id=row.id,
        prefix=row.prefix,
        role=Role(row.role),
        channel=row.channel,
        partner_id=row.partner_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class SqlApiKeys:
    """The api_keys table. Each call is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, role: Role, channel: str | None = None, partner_id: str | None = None
    ) -> tuple[str, ApiKey]:
        """A new key: returns the plaintext (shown once, never stored) and its record."""
        check_scope(role, channel, partner_id)
        key, created = new_key(), datetime.now(UTC)
        record = ApiKey(0, key[:PREFIX_LENGTH], role, channel, partner_id, created, None)
        values = {
            "key_sha256": hash_key(key),
            "prefix": record.prefix,
            "role": role.value,
            "channel": channel,
            "partner_id": partner_id,
            "created_at": created,
        }
        with self.engine.begin() as conn:
            new_id = conn.execute(insert(api_keys), values).inserted_primary_key
        if new_id is None:
            raise InvariantViolation("the database returned no id for a new API key")
        return key, replace(record, id=int(new_id[0]))

    def find(self, key: str) -> ApiKey | None:
        """The record for a presented key, revoked or not; None if no such key exists."""
        with self.engine.connect() as conn:
            row = conn.execute(_BY_DIGEST, {"digest": hash_key(key)}).first()
        return None if row is None else _from_row(row)

    def all(self) -> tuple[ApiKey, ...]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.id))
            return tuple(_from_row(r) for r in rows)

    def revoke(self, prefix: str) -> ApiKey:
        """Revoke the one active key with this prefix (or full key); ambiguity is refused."""
        prefix = prefix[:PREFIX_LENGTH]
        with self.engine.begin() as conn:
            rows = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).all()
            active = [r for r in rows if r.revoked_at is None]
            if not rows:
                raise NotFound(f"no API key with prefix {prefix!r}", field="prefix")
            if not active:
                raise Conflict(f"the key {prefix!r} is already revoked", field="prefix")
            if len(active) > 1:
                raise Conflict(f"{len(active)} active keys share prefix {prefix!r}", field="prefix")
            when = datetime.now(UTC)
            conn.execute(
                update(api_keys).where(api_keys.c.id == active[0].id), {"revoked_at": when}
            )
        return replace(_from_row(active[0]), revoked_at=when)


__all__ = ["ApiKey", "Role", "SqlApiKeys", "check_scope", "hash_key", "new_key"]
