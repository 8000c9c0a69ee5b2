"""PII at rest: AES-256-GCM tokens for the applicant's name, resident ID and mobile.

The audit log must be verifiable by anyone and readable in full by almost no one, so the
three PII fields are sealed before the record is hashed: verification needs no key, and a
leaked table leaks ciphertext. Each token is bound (as GCM associated data) to its decision and
field, so a token copied into another record or field fails to open. A keyed HMAC of the
resident ID gives a stable pseudonym for duplicate and exposure checks without the ID itself.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lendstack.core.errors import NotFound, ValidationError
from lendstack.settings import Settings
from lendstack.underwriting import identity
from lendstack.underwriting.application import PII_FIELDS

KEY_BYTES = 32
NONCE_BYTES = 12
TOKEN_PREFIX = "v1:"
"""Version tag: a later key or cipher can be introduced beside v1 without guessing."""

_MASKS = {
    "name": identity.mask_name,
    "resident_id": identity.mask_resident_id,
    "mobile": identity.mask_mobile,
}


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("is not valid base64", field="pii_key") from None
    if len(key) != KEY_BYTES:
        raise ValidationError(f"must be {KEY_BYTES} bytes, got {len(key)}", field="pii_key")
    return key


def _create_key_file(path: Path) -> None:
    """Write a fresh key with O_EXCL: if two processes race, exactly one key ever exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key_file(path: Path) -> str:
    """The key text; a racing creator may not have written it yet, so an empty read waits."""
    for _ in range(200):
        text = path.read_text(encoding="ascii")
        if text.strip():
            return text
        time.sleep(0.005)
    raise ValidationError(f"key file {path} is empty", field="pii_key")


def load_key(settings: Settings, *, create: bool = True) -> bytes:
    """The PII master key: LENDSTACK_PII_KEY if set, else the key file, made on first use.

    `create=False` is for readers (show, export): a fresh key could never open old tokens.
    """
    if settings.pii_key:
        return _decode_key(settings.pii_key)
    path = settings.pii_key_file
    if not path.exists():
        if not create:
            raise NotFound(f"no PII key: set LENDSTACK_PII_KEY or provide {path}", field="pii_key")
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            _create_key_file(path)
    return _decode_key(_read_key_file(path))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


class PiiVault:
    """Seal and open PII under one master key; built once per process and reused."""

    __slots__ = ("_aead", "_borrower_subkey")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValidationError(f"must be {KEY_BYTES} bytes", field="pii_key")
        self._aead = AESGCM(key)
        # A separate subkey: the pseudonym must not be computable from anything sealed.
        hkdf = HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=b"lendstack borrower key")
        self._borrower_subkey = hkdf.derive(key)

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = True) -> PiiVault:
        return cls(load_key(settings, create=create))

    @classmethod
    def for_reading(cls, settings: Settings) -> PiiVault | None:
        """The vault if its key exists, else None: a reader never creates a key (a fresh key
        could open nothing), and works on without the PII (a bad key is still an error)."""
        try:
            return cls.from_settings(settings, create=False)
        except NotFound:
            return None

    def seal(self, plaintext: str, *, context: str) -> str:
        """A token `v1:<base64url(nonce ‖ ciphertext ‖ tag)>`, bound to `context`."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return TOKEN_PREFIX + _b64(nonce + sealed)

    def open(self, token: str, *, context: str) -> str:
        """The plaintext; a wrong key, a changed token or the wrong context all refuse."""
        if not token.startswith(TOKEN_PREFIX):
            raise ValidationError("is not a v1 PII token", field="pii_token")
        try:
            raw = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :].encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise ValidationError("is not valid base64", field="pii_token") from None
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError):
            raise ValidationError(
                f"cannot open the PII token for {context!r}: wrong key, "
                "or the token was altered or moved from another record",
                field="pii_key",
            ) from None
        return plain.decode()

    def borrower_key(self, resident_id: str) -> str:
        """A stable pseudonym (HMAC-SHA256 hex) for one person, useless without the key."""
        normal = resident_id.strip().upper().encode()
        return hmac.new(self._borrower_subkey, normal, hashlib.sha256).hexdigest()

    def protect(self, application_json: dict[str, Any], decision_id: str) -> dict[str, Any]:
        """A copy of the application with the applicant's PII fields sealed."""
        return _map_pii(application_json, lambda f, v: self.seal(v, context=f"{decision_id}:{f}"))

    def reveal(self, protected: dict[str, Any], decision_id: str) -> dict[str, Any]:
        """The inverse of `protect`: needs the key that sealed it."""
        return _map_pii(protected, lambda f, v: self.open(v, context=f"{decision_id}:{f}"))

    def reveal_field(self, protected: dict[str, Any], decision_id: str, field: str) -> str | None:
        """One sealed applicant field of a protected application, opening only it (None if
        the application has none): a reader that needs the ID never holds the name."""
        applicant = protected.get("applicant")
        token = applicant.get(field) if isinstance(applicant, dict) else None
        return (
            self.open(token, context=f"{decision_id}:{field}") if isinstance(token, str) else None
        )

    def masked(self, application_json: dict[str, Any]) -> dict[str, Any]:
        """A copy with PII masked for staff screens; see `mask_application`."""
        return mask_application(application_json)


def mask_application(application_json: dict[str, Any]) -> dict[str, Any]:
    """A copy with PII shown the way staff screens show it (e.g. 110**************X)."""
    return _map_pii(application_json, lambda f, v: _MASKS[f](v))


def _map_pii(application: dict[str, Any], change: Callable[[str, str], str]) -> dict[str, Any]:
    """Copy `application`, passing each present applicant PII field through `change`."""
    applicant = application.get("applicant")
    if not isinstance(applicant, dict):
        return dict(application)
    fresh = dict(applicant)
    for field in PII_FIELDS:
        value = fresh.get(field)
        if isinstance(value, str):
            fresh[field] = change(field, value)
    return {**application, "applicant": fresh}


def map_applications(record: Any, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """Apply `change(application)` to every dict holding an `applicant` inside a record.

    The log does not fix where a record keeps its application; this finds it wherever it is.
    """
    if isinstance(record, dict):
        if isinstance(record.get("applicant"), dict):
            return change(record)
        return {k: map_applications(v, change) for k, v in record.items()}
    if isinstance(record, list):
        return [map_applications(v, change) for v in record]
    return record


__all__ = ["PiiVault", "load_key", "map_applications", "mask_application"]
