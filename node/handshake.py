"""The peer handshake: a validator proves its key once and gets a session token that
admits its later peer requests before a byte of their bodies is read.

Every peer message is signed (``node/peers.py``), but checking that signature means
reading, decoding and verifying the whole body, up to 64 MiB, for anyone who connects.
The handshake moves the first check in front of the body, onto something cheap:

1. ``GET /peer/v1/challenge`` → ``cb({"challenge": 40 bytes})``: the server's monotonic
   clock (8 bytes, ms), 16 random bytes and a MAC over both under a secret the server
   draws at start. Nothing is stored: the MAC makes the challenge the server's own.
2. ``POST /peer/v1/hello`` with ``cb({"hello": {"chain_id", "sender", "receiver",
   "challenge"}, "sig"})``, signed by the sender's validator key over
   ``PEER_HELLO_DOMAIN``, at most :data:`HELLO_MAX_BYTES`. The server checks, in order:
   size, canonical form, chain, sender index, receiver (this node, when it knows its
   index), the challenge's MAC and age (:data:`CHALLENGE_TTL_MS` on the server's own
   clock, so the sender's clock does not matter), the signature, and that the challenge
   was not used before. It answers ``cb({"token": 32 random bytes, "ttl_ms"})``.
3. Every later request carries ``X-ZL-Peer-Token: <sender>.<hex token>``; the server
   compares it, in constant time, with the few live tokens of that sender and refuses
   anything else with 401 ``peer.session_invalid`` without reading the body.

A hello cannot be used at another node (another secret: the MAC fails; and the signed
``receiver``), nor later (the challenge expires, and is spent once). Tokens are bounded:
:data:`TOKENS_PER_SENDER` live ones per validator (the oldest goes), so the table holds
at most ``n`` times that, and only validators can add to it. The token only guards
cost; each message's own signature still proves who sent it. On plain HTTP a token can
be read off the wire like any header; TLS (``[tls]``) keeps it private.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.encoding import bounded_repr, cb, decode_cb, expect_bytes, expect_int, expect_map, expect_str
from ledger.errors import (
    EncodingError,
    NodeUnavailableError,
    PeerHelloError,
    PeerMalformedError,
    PeerSessionError,
    PeerSignatureError,
    PeerUnknownSenderError,
)
from ledger.keys import PEER_HELLO_DOMAIN, SIGNATURE_SIZE, SigningKey, signing_bytes, verify_bytes
from ledger.limits import MAX_PEER_HELLO_BYTES

HEADER_TOKEN = "X-ZL-Peer-Token"
CHALLENGE_SIZE = 40
"""Issue time (8) || random (16) || MAC (16)."""
TOKEN_SIZE = 32
HELLO_MAX_BYTES = MAX_PEER_HELLO_BYTES
CHALLENGE_TTL_MS = 30_000
"""How long a challenge may be answered, on the server's clock."""
SESSION_TTL_MS = 10 * 60_000
"""How long a session token lives."""
TOKENS_PER_SENDER = 4
"""Live tokens kept per validator (a restart or a race may start a second session)."""
SPENT_PER_SENDER = 64
"""Spent challenges remembered per validator until they expire; more hellos wait."""

_CHALLENGE_DOMAIN = b"zoneledger/peer-challenge/v1\x00"
_MAC_SIZE = 16
_HELLO_FIELDS = frozenset({"chain_id", "sender", "receiver", "challenge"})
_SIGNED_FIELDS = frozenset({"hello", "sig"})
_MAX_INDEX_DIGITS = 6


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


# --- wire types ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """The server's answer to ``GET /peer/v1/challenge``."""

    value: bytes
    """Opaque to the client: echoed in the hello it signs."""

    def encode(self) -> bytes:
        return cb({"challenge": self.value})

    @classmethod
    def decode(cls, data: bytes) -> Challenge:
        try:
            m = expect_map(decode_cb(data), "challenge reply", frozenset({"challenge"}))
            return cls(expect_bytes(m["challenge"], "challenge", CHALLENGE_SIZE))
        except EncodingError as exc:
            raise PeerMalformedError(f"challenge reply: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PeerHello:
    """A validator's proof that it holds its key, for one receiver and one challenge."""

    chain_id: str
    """The genesis chain id."""
    sender: int
    """Index of the validator asking for a session; its key signs."""
    receiver: int
    """Index of the validator the hello is for."""
    challenge: bytes
    """The receiver's challenge, as received."""

    def to_wire(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "sender": self.sender, "receiver": self.receiver, "challenge": self.challenge}

    def signing_bytes(self) -> bytes:
        """``PEER_HELLO_DOMAIN || cb(hello)``: what the sender's signature covers."""
        return signing_bytes(PEER_HELLO_DOMAIN, self.to_wire())

    def sign(self, key: SigningKey) -> bytes:
        """The wire bytes ``cb({"hello": hello, "sig": sig})``."""
        return cb({"hello": self.to_wire(), "sig": key.sign_bytes(self.signing_bytes())})

    @classmethod
    def decode_signed(cls, data: bytes) -> tuple[PeerHello, bytes]:
        """Parse the signed form into the hello and its signature (no verification)."""
        try:
            m = expect_map(decode_cb(data), "peer hello", _SIGNED_FIELDS)
            h = expect_map(m["hello"], "hello", _HELLO_FIELDS)
            hello = cls(
                chain_id=expect_str(h["chain_id"], "hello.chain_id"),
                sender=expect_int(h["sender"], "hello.sender"),
                receiver=expect_int(h["receiver"], "hello.receiver"),
                challenge=expect_bytes(h["challenge"], "hello.challenge", CHALLENGE_SIZE),
            )
            return hello, expect_bytes(m["sig"], "sig", SIGNATURE_SIZE)
        except EncodingError as exc:
            raise PeerMalformedError(f"peer hello: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """The server's answer to an accepted hello."""

    token: bytes
    """32 random bytes; sent back as ``X-ZL-Peer-Token: <sender>.<hex>``."""
    ttl_ms: int
    """How long the token lives from the moment the server issued it."""

    def encode(self) -> bytes:
        return cb({"token": self.token, "ttl_ms": self.ttl_ms})

    @classmethod
    def decode(cls, data: bytes) -> SessionGrant:
        try:
            m = expect_map(decode_cb(data), "session grant", frozenset({"token", "ttl_ms"}))
            return cls(expect_bytes(m["token"], "token", TOKEN_SIZE), expect_int(m["ttl_ms"], "ttl_ms", 1))
        except EncodingError as exc:
            raise PeerMalformedError(f"session grant: {exc}") from exc


def format_token(sender: int, token: bytes) -> str:
    """The ``X-ZL-Peer-Token`` header value of ``sender``'s session."""
    return f"{sender}.{token.hex()}"


def parse_token(value: str) -> tuple[int, bytes]:
    """``(sender, token)`` from a header value, or PeerSessionError."""
    sender_text, _, token_text = value.partition(".")
    if not (sender_text.isascii() and sender_text.isdigit() and len(sender_text) <= _MAX_INDEX_DIGITS):
        raise PeerSessionError(f"{HEADER_TOKEN}: expected '<validator index>.<hex token>', got another form")
    if len(token_text) != 2 * TOKEN_SIZE:
        raise PeerSessionError(f"{HEADER_TOKEN}: expected {2 * TOKEN_SIZE} hex characters, got {len(token_text)}")
    try:
        return int(sender_text), bytes.fromhex(token_text)
    except ValueError:
        raise PeerSessionError(f"{HEADER_TOKEN}: expected hex, got other characters") from None


# --- the server's side -------------------------------------------------------------------


class PeerSessions:
    """One node's challenges and session tokens (in memory: a restart ends every session)."""

    def __init__(
        self,
        *,
        chain_id: str,
        validators: Sequence[bytes],
        my_index: int | None = None,
        clock: Callable[[], int] = _monotonic_ms,
        session_ttl_ms: int = SESSION_TTL_MS,
        challenge_ttl_ms: int = CHALLENGE_TTL_MS,
    ) -> None:
        self.chain_id = chain_id
        self.validators = tuple(validators)
        self.my_index = my_index
        """This node's validator index; ``None`` leaves the receiver to the challenge's MAC."""
        self.clock = clock
        self.session_ttl_ms = session_ttl_ms
        self.challenge_ttl_ms = challenge_ttl_ms
        self._secret = secrets.token_bytes(32)
        self._tokens: dict[int, list[tuple[bytes, int]]] = {}
        self._spent: dict[int, dict[bytes, int]] = {}

    # --- challenges ---

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, _CHALLENGE_DOMAIN + body, hashlib.sha256).digest()[:_MAC_SIZE]

    def issue_challenge(self) -> bytes:
        """A fresh challenge; costs one HMAC and stores nothing."""
        body = self.clock().to_bytes(8, "big") + secrets.token_bytes(16)
        return body + self._mac(body)

    def validate_challenge(self, challenge: bytes) -> int:
        """Raise unless this node issued ``challenge`` less than the TTL ago; return its expiry."""
        body, mac = challenge[:-_MAC_SIZE], challenge[-_MAC_SIZE:]
        if len(challenge) != CHALLENGE_SIZE or not hmac.compare_digest(mac, self._mac(body)):
            raise PeerHelloError("challenge: expected one this node issued, got another")
        issued = int.from_bytes(body[:8], "big")
        now = self.clock()
        if not issued <= now < issued + self.challenge_ttl_ms:
            raise PeerHelloError(f"challenge: expected one issued within {self.challenge_ttl_ms} ms, got an expired one")
        return issued + self.challenge_ttl_ms

    def _spend(self, sender: int, challenge: bytes, expiry: int) -> None:
        now = self.clock()
        spent = {c: e for c, e in self._spent.get(sender, {}).items() if e > now}
        if challenge in spent:
            raise PeerHelloError("challenge: expected a fresh one, got one already answered")
        if len(spent) >= SPENT_PER_SENDER:
            raise NodeUnavailableError(f"validator {sender}: expected fewer hellos, got {len(spent)} within a challenge's life")
        spent[challenge] = expiry
        self._spent[sender] = spent

    # --- hellos and tokens ---

    def accept_hello(self, data: bytes) -> SessionGrant:
        """Check a signed hello (the order is in the module docstring) and open a session."""
        if len(data) > HELLO_MAX_BYTES:
            raise PeerMalformedError(f"peer hello: expected at most {HELLO_MAX_BYTES} bytes, got {len(data)}")
        hello, sig = PeerHello.decode_signed(data)
        if hello.chain_id != self.chain_id:
            raise PeerMalformedError(f"chain_id: expected chain {self.chain_id!r}, got {bounded_repr(hello.chain_id)}")
        if hello.sender >= len(self.validators):
            raise PeerUnknownSenderError(
                f"sender: expected a validator index below {len(self.validators)}, got {hello.sender}"
            )
        if self.my_index is not None and hello.receiver != self.my_index:
            raise PeerHelloError(f"receiver: expected this node, validator {self.my_index}, got {hello.receiver}")
        expiry = self.validate_challenge(hello.challenge)
        verify_bytes(
            self.validators[hello.sender], hello.signing_bytes(), sig, PeerSignatureError,
            f"peer hello from validator {hello.sender}",
        )
        self._spend(hello.sender, hello.challenge, expiry)
        return self._open_session(hello.sender)

    def _open_session(self, sender: int) -> SessionGrant:
        now = self.clock()
        token = secrets.token_bytes(TOKEN_SIZE)
        live = [(t, e) for t, e in self._tokens.get(sender, []) if e > now]
        live.append((token, now + self.session_ttl_ms))
        self._tokens[sender] = live[-TOKENS_PER_SENDER:]
        return SessionGrant(token, self.session_ttl_ms)

    def authenticate(self, header: str | None) -> int:
        """The validator whose live session ``header`` names, or PeerSessionError (headers only)."""
        if not header:
            raise PeerSessionError(f"expected a session ({HEADER_TOKEN}; POST /peer/v1/hello first), got none")
        sender, token = parse_token(header)
        now = self.clock()
        live = False
        # Every stored token is compared, whatever matched: the time taken says nothing about the secret.
        for stored, expires in self._tokens.get(sender, ()):
            live |= hmac.compare_digest(stored, token) and expires > now
        if not live:
            raise PeerSessionError(f"expected a live session of validator {sender}, got an unknown or expired token")
        return sender

    def session_count(self) -> int:
        return sum(len(tokens) for tokens in self._tokens.values())
