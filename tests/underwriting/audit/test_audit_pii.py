"""PII at rest: tokens open only with the right key and context; the key file is made once."""

from __future__ import annotations

import base64
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from audit_testdata import MOBILE, NAME, RESIDENT_ID, application

from lendstack.core.errors import NotFound, ValidationError
from lendstack.settings import Settings
from lendstack.underwriting.pii import PiiVault, load_key, mask_application


def test_a_token_opens_with_its_key_and_context(vault):
    token = vault.seal(RESIDENT_ID, context="dec-1:resident_id")
    assert token.startswith("v1:")
    assert RESIDENT_ID not in token
    assert vault.open(token, context="dec-1:resident_id") == RESIDENT_ID
    assert vault.seal(RESIDENT_ID, context="dec-1:resident_id") != token  # fresh nonce


def test_a_token_moved_to_another_field_or_record_does_not_open(vault):
    token = vault.seal(NAME, context="dec-1:name")
    for context in ("dec-1:mobile", "dec-2:name"):
        with pytest.raises(ValidationError, match="wrong key, or the token was altered"):
            vault.open(token, context=context)


def test_a_wrong_key_or_altered_token_does_not_open(vault):
    token = vault.seal(NAME, context="c")
    with pytest.raises(ValidationError) as err:
        PiiVault(os.urandom(32)).open(token, context="c")
    assert err.value.field == "pii_key"
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[-1] ^= 1
    with pytest.raises(ValidationError):
        vault.open("v1:" + base64.urlsafe_b64encode(bytes(raw)).decode(), context="c")
    with pytest.raises(ValidationError):
        vault.open("plain text", context="c")


def test_protect_and_reveal_are_inverse_and_leave_other_fields(vault):
    app = application()
    sealed = vault.protect(app, "dec-9")
    assert app == application()  # the input is not changed
    for field, plain in (("name", NAME), ("resident_id", RESIDENT_ID), ("mobile", MOBILE)):
        assert sealed["applicant"][field].startswith("v1:")
        assert plain not in str(sealed)
    assert sealed["applicant"]["city"] == "Beijing"
    assert sealed["loan"] == app["loan"]
    assert vault.reveal(sealed, "dec-9") == app
    with pytest.raises(ValidationError):
        vault.reveal(sealed, "dec-10")


def test_masked_view_shows_only_the_safe_parts(vault):
    shown = vault.masked(application())["applicant"]
    assert shown["name"] == NAME[0] + "**"
    assert shown["resident_id"] == RESIDENT_ID[:3] + "*" * 14 + RESIDENT_ID[-1]
    assert shown["mobile"] == "138****5678"
    assert mask_application(application()) == vault.masked(application())


def test_borrower_key_is_stable_per_key_and_hides_the_id(key, vault):
    bk = vault.borrower_key(RESIDENT_ID)
    assert bk == PiiVault(key).borrower_key(RESIDENT_ID.lower())
    assert len(bk) == 64
    assert RESIDENT_ID not in bk
    assert bk != PiiVault(os.urandom(32)).borrower_key(RESIDENT_ID)
    assert bk != vault.borrower_key(RESIDENT_ID[:-2] + "00")


def test_key_file_is_created_0600_on_first_use_and_then_reused(tmp_path):
    path = tmp_path / "pii.key"
    settings = Settings(pii_key_file=path)
    with pytest.raises(NotFound):
        load_key(settings, create=False)
    first = load_key(settings)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(settings) == first
    assert load_key(settings, create=False) == first


def test_racing_first_uses_agree_on_one_key(tmp_path):
    settings = Settings(pii_key_file=tmp_path / "race.key")
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_key(settings), range(32)))
    assert len(keys) == 1


def test_the_environment_key_wins_and_malformed_keys_name_the_field(tmp_path):
    key = os.urandom(32)
    settings = Settings(pii_key=base64.b64encode(key).decode(), pii_key_file=tmp_path / "k")
    assert load_key(settings) == key
    assert not (tmp_path / "k").exists()
    for bad in ("not base64!!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValidationError) as err:
            load_key(Settings(pii_key=bad))
        assert err.value.field == "pii_key"
    (tmp_path / "bad.key").write_text("garbage")
    with pytest.raises(ValidationError):
        load_key(Settings(pii_key_file=tmp_path / "bad.key"))
