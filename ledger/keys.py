"""Ed25519 keys: generation, PEM files, domain-separated signing and verification.

A signature always covers ``DOMAIN || cb(payload)`` with one domain per kind of
message (DESIGN §2), so a transaction signature can never pass as a vote. Private
keys live only inside :class:`SigningKey`; its ``repr`` never shows them, and errors
about key files never quote their contents.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.encoding import H, cb
from ledger.errors import KeyFileError, KeyPassphraseError, LedgerError

TX_DOMAIN = b"zoneledger/tx/v1\x00"
VOTE_DOMAIN = b"zoneledger/vote/v1\x00"
PROPOSAL_DOMAIN = b"zoneledger/proposal/v1\x00"
REQUEST_DOMAIN = b"zoneledger/request/v1\x00"
PEER_DOMAIN = b"zoneledger/peer/v1\x00"
PEER_HELLO_DOMAIN = b"zoneledger/peer-hello/v1\x00"
STREAM_OPEN_DOMAIN = b"zoneledger/peer-stream-open/v1\x00"
STREAM_ACCEPT_DOMAIN = b"zoneledger/peer-stream-accept/v1\x00"
JOIN_DOMAIN = b"zoneledger/join/v1\x00"
"""A new zone key's proof of possession (DESIGN §12)."""

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def signing_bytes(domain: bytes, payload: Any) -> bytes:
    """The exact bytes a signature of ``domain`` over ``payload`` covers."""
    return domain + cb(payload)


class SigningKey:
    """An Ed25519 private key. Never printed, never serialised unencrypted by accident."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public: bytes = key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from a 32-byte seed (test vectors, simulations)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_label(cls, label: str) -> SigningKey:
        """Key whose seed is SHA-256 of ``label``, as in the contract's examples."""
        return cls.from_seed(H(label.encode("utf-8")))

    def sign_bytes(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def sign(self, domain: bytes, payload: Any) -> bytes:
        return self._key.sign(signing_bytes(domain, payload))

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption
        if passphrase:
            encryption = serialization.BestAvailableEncryption(passphrase)
        else:
            encryption = serialization.NoEncryption()
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def save(self, path: str | os.PathLike[str], passphrase: bytes | None = None) -> None:
        """Write PKCS#8 PEM with mode 0600, created so the key is never world-readable."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError as exc:
            raise KeyFileError(f"expected a new key file, got an existing {target}") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.to_pem(passphrase))
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: str | os.PathLike[str], passphrase: bytes | None = None) -> SigningKey:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
        return cls.from_pem(data, passphrase, source=str(path))

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None, *, source: str = "key") -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase or None)
        except TypeError as exc:
            # cryptography says TypeError for "password given but not encrypted" and the reverse.
            if passphrase:
                raise KeyPassphraseError(f"{source}: expected an encrypted key, got an unencrypted one") from exc
            raise KeyPassphraseError(f"{source}: key is encrypted; a passphrase is needed") from exc
        except ValueError as exc:
            if passphrase:
                raise KeyPassphraseError(f"{source}: wrong passphrase or damaged key file") from exc
            raise KeyFileError(f"{source}: expected a PKCS#8 PEM private key, got unreadable data") from exc
        except UnsupportedAlgorithm as exc:
            raise KeyFileError(f"{source}: expected an Ed25519 key, got an unsupported algorithm") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{source}: expected an Ed25519 key, got {type(key).__name__}")
        return cls(key)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.hex()})"


@lru_cache(maxsize=4096)
def _public_key(public: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public)


def is_valid_public_key(public: bytes) -> bool:
    if len(public) != PUBLIC_KEY_SIZE:
        return False
    try:
        _public_key(public)
    except ValueError:
        return False
    return True


def verify_bytes(
    public: bytes,
    message: bytes,
    signature: bytes,
    error: type[LedgerError],
    what: str = "signature",
) -> None:
    """Raise ``error`` unless ``signature`` by ``public`` covers ``message``."""
    expected = f"an Ed25519 signature by {public.hex()}"
    if len(signature) != SIGNATURE_SIZE:
        raise error(
            f"{what}: expected {SIGNATURE_SIZE} signature bytes, got {len(signature)}", expected=expected, found=signature
        )
    try:
        _public_key(public).verify(signature, message)
    except InvalidSignature as exc:
        raise error(
            f"{what}: expected a signature by {public.hex()[:16]}…, got one that does not verify",
            expected=expected, found=signature,
        ) from exc
    except ValueError as exc:
        raise error(f"{what}: expected a valid Ed25519 public key, got {public.hex()[:16]}…") from exc


def verify(
    public: bytes,
    domain: bytes,
    payload: Any,
    signature: bytes,
    error: type[LedgerError],
    what: str = "signature",
) -> None:
    """Raise ``error`` unless ``signature`` covers ``domain || cb(payload)``."""
    verify_bytes(public, signing_bytes(domain, payload), signature, error, what)
