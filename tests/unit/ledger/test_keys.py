"""Keys: PEM files, passphrases, domain separation, and keys never shown."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ledger import errors
from ledger.keys import PROPOSAL_DOMAIN, TX_DOMAIN, VOTE_DOMAIN, SigningKey, verify


def test_pem_file_is_private_and_round_trips(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "officer.pem"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert SigningKey.load(path).public == key.public


def test_encrypted_pem_needs_the_passphrase(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "admin.pem"
    key.save(path, b"correct horse")
    assert b"ENCRYPTED" in path.read_bytes()
    assert SigningKey.load(path, b"correct horse").public == key.public
    with pytest.raises(errors.KeyPassphraseError):
        SigningKey.load(path, b"wrong")
    with pytest.raises(errors.KeyPassphraseError):
        SigningKey.load(path)


def test_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    SigningKey.generate().save(path)
    before = path.read_bytes()
    with pytest.raises(errors.KeyFileError):
        SigningKey.generate().save(path)
    assert path.read_bytes() == before


def test_unreadable_key_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.pem"
    path.write_bytes(b"not a key")
    with pytest.raises(errors.KeyFileError):
        SigningKey.load(path)
    with pytest.raises(errors.KeyFileError):
        SigningKey.load(tmp_path / "missing.pem")


def test_repr_and_errors_never_show_the_private_key(tmp_path: Path) -> None:
    key = SigningKey.from_label("secret")
    pem = key.to_pem()
    body = b"".join(pem.splitlines()[1:-1]).decode()
    assert body not in repr(key)
    assert key.public.hex() in repr(key)


def test_signature_domains_are_separate() -> None:
    key = SigningKey.from_label("validator")
    payload = {"height": 1}
    sig = key.sign(VOTE_DOMAIN, payload)
    verify(key.public, VOTE_DOMAIN, payload, sig, errors.VoteSignatureError)
    for other in (TX_DOMAIN, PROPOSAL_DOMAIN):
        with pytest.raises(errors.SignatureInvalidError):
            verify(key.public, other, payload, sig, errors.SignatureInvalidError)


def test_signature_of_wrong_length_is_refused() -> None:
    key = SigningKey.from_label("validator")
    with pytest.raises(errors.SignatureInvalidError, match="64 signature bytes"):
        verify(key.public, TX_DOMAIN, {}, b"\x00" * 10, errors.SignatureInvalidError)
