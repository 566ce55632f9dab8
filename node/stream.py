"""Peer streams: one long-lived, authenticated WebSocket per ordered pair of validators.

At 58 zones a height is about 6,600 consensus messages (every validator's prevote and
precommit to every other). One HTTP request and one Ed25519 signature per message cost
more CPU than the consensus itself, so validators keep a stream open to each peer and
batch whatever is queued for it into one frame.

Opening a stream (``GET /peer/v1/stream``, WebSocket upgrade):

1. The upgrade request carries a live session token (``X-ZL-Peer-Token``, from the
   handshake of ``node/handshake.py``): a stranger never gets a WebSocket, so never gets
   to send the server a large frame.
2. The dialer sends :class:`StreamOpen` ``{"chain_id", "sender", "receiver", "eph"}``,
   signed by its validator key over ``STREAM_OPEN_DOMAIN``: ``eph`` is a fresh X25519
   public key.
3. The server answers :class:`StreamAccept` ``{"chain_id", "sender", "receiver",
   "eph_open", "eph_accept"}``, signed by *its* validator key over
   ``STREAM_ACCEPT_DOMAIN``, with a fresh X25519 key of its own.
4. Both derive two 32-byte keys, one per direction, with HKDF-SHA256 from the X25519
   shared secret, salted with ``H(open_bytes || accept_bytes)``.

This is the station-to-station pattern of CometBFT's SecretConnection, without its
encryption (TLS gives confidentiality where the alliance wants it): both validators have
signed the exchange, only they know the keys, and a replayed ``StreamOpen`` gives an
attacker a session whose keys it cannot compute.

After that every WebSocket message is a frame ``payload || tag``: ``tag`` is the first
16 bytes of HMAC-SHA256 over ``seq (8 bytes, big-endian) || payload`` under the
direction's key, ``seq`` counting frames from 0 in that direction. A frame altered,
injected, replayed, dropped or reordered fails its tag, and the stream is closed.
``payload`` is ``cb([item, ...])``, each item one of:

- ``["m", kind, body]``: a message, no reply (votes, proposals, certificates);
- ``["q", id, kind, body]``: a request; the server answers on the same stream with
- ``["r", id, body]`` (its reply) or ``["e", id, code, detail]`` (a refusal).

So each byte of a stream is proven to come from the validator that opened it or the
one that accepted it. What a third party must be able to check keeps its own signature
inside ``body`` (votes, proposals, certificates, blocks, transactions).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.encoding import (
    H,
    bounded_repr,
    cb,
    decode_cb,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_str,
)
from ledger.errors import (
    EncodingError,
    PeerFrameError,
    PeerMalformedError,
    PeerSignatureError,
    PeerUnknownSenderError,
)
from ledger.keys import (
    SIGNATURE_SIZE,
    STREAM_ACCEPT_DOMAIN,
    STREAM_OPEN_DOMAIN,
    SigningKey,
    signing_bytes,
    verify_bytes,
)
from ledger.limits import MAX_PEER_HELLO_BYTES

STREAM_PATH_SUFFIX: Final = "/stream"
EPHEMERAL_KEY_SIZE: Final = 32
TAG_SIZE: Final = 16
HANDSHAKE_MAX_BYTES: Final = MAX_PEER_HELLO_BYTES
"""A signed open or accept is about 200 bytes."""
_KEY_INFO: Final = b"zoneledger/peer-stream/v1"

MESSAGE: Final = "m"
REQUEST: Final = "q"
REPLY: Final = "r"
REFUSAL: Final = "e"

_OPEN_FIELDS = frozenset({"chain_id", "sender", "receiver", "eph"})
_ACCEPT_FIELDS = frozenset({"chain_id", "sender", "receiver", "eph_open", "eph_accept"})
_SIGNED_FIELDS = frozenset({"msg", "sig"})
_ITEM_LENGTHS: Final = {MESSAGE: 3, REQUEST: 4, REPLY: 3, REFUSAL: 4}


# --- the handshake ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamOpen:
    """The dialer's half of the key agreement."""

    chain_id: str
    sender: int
    """The dialing validator."""
    receiver: int
    """The validator it dialed."""
    eph: bytes
    """The dialer's fresh X25519 public key."""

    def to_wire(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "sender": self.sender, "receiver": self.receiver, "eph": self.eph}

    def sign(self, key: SigningKey) -> bytes:
        return _sign(self.to_wire(), STREAM_OPEN_DOMAIN, key)

    @classmethod
    def from_wire(cls, value: Any) -> StreamOpen:
        m = expect_map(value, "stream open", _OPEN_FIELDS)
        return cls(
            expect_str(m["chain_id"], "chain_id"), expect_int(m["sender"], "sender"),
            expect_int(m["receiver"], "receiver"), expect_bytes(m["eph"], "eph", EPHEMERAL_KEY_SIZE),
        )


@dataclass(frozen=True, slots=True)
class StreamAccept:
    """The accepting validator's half: both ephemeral keys, under its own signature."""

    chain_id: str
    sender: int
    """The accepting validator."""
    receiver: int
    """The validator that dialed."""
    eph_open: bytes
    eph_accept: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id, "sender": self.sender, "receiver": self.receiver,
            "eph_open": self.eph_open, "eph_accept": self.eph_accept,
        }

    def sign(self, key: SigningKey) -> bytes:
        return _sign(self.to_wire(), STREAM_ACCEPT_DOMAIN, key)

    @classmethod
    def from_wire(cls, value: Any) -> StreamAccept:
        m = expect_map(value, "stream accept", _ACCEPT_FIELDS)
        return cls(
            expect_str(m["chain_id"], "chain_id"), expect_int(m["sender"], "sender"),
            expect_int(m["receiver"], "receiver"), expect_bytes(m["eph_open"], "eph_open", EPHEMERAL_KEY_SIZE),
            expect_bytes(m["eph_accept"], "eph_accept", EPHEMERAL_KEY_SIZE),
        )


def _sign(wire: dict[str, Any], domain: bytes, key: SigningKey) -> bytes:
    return cb({"msg": wire, "sig": key.sign_bytes(signing_bytes(domain, wire))})


def _decode_signed(data: bytes, what: str) -> tuple[Any, bytes]:
    if len(data) > HANDSHAKE_MAX_BYTES:
        raise PeerMalformedError(f"{what}: expected at most {HANDSHAKE_MAX_BYTES} bytes, got {len(data)}")
    try:
        m = expect_map(decode_cb(data), what, _SIGNED_FIELDS)
        return m["msg"], expect_bytes(m["sig"], "sig", SIGNATURE_SIZE)
    except EncodingError as exc:
        raise PeerMalformedError(f"{what}: {exc}") from exc


def _validator_key(validators: Sequence[bytes], index: int, what: str) -> bytes:
    if not 0 <= index < len(validators):
        raise PeerUnknownSenderError(f"{what}: expected a validator index below {len(validators)}, got {index}")
    return validators[index]


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The two directions' MAC keys of one stream, as seen from one end."""

    send: bytes
    receive: bytes


def compute_stream_keys(shared: bytes, open_bytes: bytes, accept_bytes: bytes) -> tuple[bytes, bytes]:
    """(dialer-to-acceptor key, acceptor-to-dialer key) from the X25519 secret and transcript."""
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=H(open_bytes + accept_bytes), info=_KEY_INFO).derive(shared)
    return okm[:32], okm[32:]


def _exchange(private: X25519PrivateKey, peer_public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:  # an all-zero shared secret: a low-order point
        raise PeerSignatureError(f"stream key agreement failed: {exc}") from exc


class StreamDialer:
    """The dialer's side of one handshake: ``open_bytes`` out, ``finish(accept)`` in."""

    def __init__(self, *, chain_id: str, sender: int, receiver: int, key: SigningKey) -> None:
        self._private = X25519PrivateKey.generate()
        self.opening = StreamOpen(chain_id, sender, receiver, self._private.public_key().public_bytes_raw())
        self.open_bytes = self.opening.sign(key)

    def finish(self, accept_bytes: bytes, validators: Sequence[bytes]) -> StreamKeys:
        """Check the acceptor's signed answer; raise unless it is the validator we dialed."""
        wire, sig = _decode_signed(accept_bytes, "stream accept")
        try:
            accept = StreamAccept.from_wire(wire)
        except EncodingError as exc:
            raise PeerMalformedError(f"stream accept: {exc}") from exc
        o = self.opening
        if (accept.chain_id, accept.sender, accept.receiver) != (o.chain_id, o.receiver, o.sender):
            raise PeerSignatureError(
                f"stream accept: expected validator {o.receiver} answering {o.sender} on {o.chain_id!r}, "
                f"got validator {accept.sender} answering {accept.receiver} on {bounded_repr(accept.chain_id)}"
            )
        if accept.eph_open != o.eph:
            raise PeerSignatureError("stream accept: expected our ephemeral key echoed, got another")
        verify_bytes(
            _validator_key(validators, o.receiver, "stream accept"), signing_bytes(STREAM_ACCEPT_DOMAIN, wire), sig,
            PeerSignatureError, f"stream accept from validator {o.receiver}",
        )
        to_acceptor, to_dialer = compute_stream_keys(
            _exchange(self._private, accept.eph_accept), self.open_bytes, accept_bytes
        )
        return StreamKeys(send=to_acceptor, receive=to_dialer)


def accept_stream(
    open_bytes: bytes, *, chain_id: str, validators: Sequence[bytes], my_index: int, session_sender: int,
    key: SigningKey,
) -> tuple[bytes, StreamKeys]:
    """Check a dialer's signed open; return the signed accept to send back and the keys.

    Raises unless the open is for this chain and this validator, from the validator whose
    session token opened the WebSocket, and signed by it.
    """
    wire, sig = _decode_signed(open_bytes, "stream open")
    try:
        opening = StreamOpen.from_wire(wire)
    except EncodingError as exc:
        raise PeerMalformedError(f"stream open: {exc}") from exc
    if opening.chain_id != chain_id:
        raise PeerMalformedError(f"stream open: expected chain {chain_id!r}, got {bounded_repr(opening.chain_id)}")
    if opening.receiver != my_index:
        raise PeerSignatureError(f"stream open: expected one addressed to validator {my_index}, got {opening.receiver}")
    if opening.sender != session_sender:
        raise PeerSignatureError(
            f"stream open: expected validator {session_sender}, whose session this is, got {opening.sender}"
        )
    verify_bytes(
        _validator_key(validators, opening.sender, "stream open"), signing_bytes(STREAM_OPEN_DOMAIN, wire), sig,
        PeerSignatureError, f"stream open from validator {opening.sender}",
    )
    private = X25519PrivateKey.generate()
    accept = StreamAccept(chain_id, my_index, opening.sender, opening.eph, private.public_key().public_bytes_raw())
    accept_bytes = accept.sign(key)
    to_acceptor, to_dialer = compute_stream_keys(_exchange(private, opening.eph), open_bytes, accept_bytes)
    return accept_bytes, StreamKeys(send=to_dialer, receive=to_acceptor)


@dataclass(slots=True)
class StreamCounters:
    """What crossed a node's streams, for metrics and the per-height measurements."""

    frames: int = 0
    items: int = 0
    bytes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    """Items by kind (``vote``, ``proposal``, ...): where a height's messages go."""

    def count(self, frame_bytes: int, items: Sequence[StreamItem]) -> None:
        self.frames += 1
        self.items += len(items)
        self.bytes += frame_bytes
        for item in items:
            self.kinds[item.kind] = self.kinds.get(item.kind, 0) + 1


# --- frames -------------------------------------------------------------------------------


class FrameSealer:
    """Tags this end's outgoing frames, in order."""

    __slots__ = ("_key", "_seq")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._seq = 0

    def seal(self, payload: bytes) -> bytes:
        tag = hmac.digest(self._key, struct.pack(">Q", self._seq) + payload, hashlib.sha256)[:TAG_SIZE]
        self._seq += 1
        return payload + tag


class FrameOpener:
    """Checks the other end's frames, in order; raises PeerFrameError on the first bad one."""

    __slots__ = ("_key", "_seq")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._seq = 0

    def open(self, frame: bytes) -> bytes:
        if len(frame) < TAG_SIZE:
            raise PeerFrameError(f"frame {self._seq}: expected at least {TAG_SIZE} bytes, got {len(frame)}")
        payload, tag = frame[:-TAG_SIZE], frame[-TAG_SIZE:]
        expected = hmac.digest(self._key, struct.pack(">Q", self._seq) + payload, hashlib.sha256)[:TAG_SIZE]
        if not hmac.compare_digest(tag, expected):
            raise PeerFrameError(f"frame {self._seq}: expected its tag under this stream's key, got another")
        self._seq += 1
        return payload


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One message, request, reply or refusal inside a frame."""

    tag: str
    request_id: int = 0
    kind: str = ""
    """The message kind (``m``/``q``), or the refusal's error code (``e``)."""
    body: bytes = b""
    """The kind's bytes, the reply's bytes, or a refusal's one-line detail (UTF-8)."""

    def to_wire(self) -> list[Any]:
        if self.tag == MESSAGE:
            return [MESSAGE, self.kind, self.body]
        if self.tag == REQUEST:
            return [REQUEST, self.request_id, self.kind, self.body]
        if self.tag == REPLY:
            return [REPLY, self.request_id, self.body]
        return [REFUSAL, self.request_id, self.kind, self.body]

    @property
    def size(self) -> int:
        """Roughly its encoded size, for batching."""
        return len(self.body) + len(self.kind) + 16

    @classmethod
    def from_wire(cls, value: Any) -> StreamItem:
        item = expect_list(value, "item")
        if not item:
            raise PeerMalformedError("item: expected a tag, got an empty list")
        tag = item[0]
        shape = _ITEM_LENGTHS.get(tag) if type(tag) is str else None
        if shape is None or len(item) != shape:
            raise PeerMalformedError(f"item: expected ['m'|'q'|'r'|'e', ...] of its length, got {bounded_repr(str(item))}")
        if tag == MESSAGE:
            return cls(MESSAGE, 0, expect_str(item[1], "kind"), expect_bytes(item[2], "body"))
        request_id = expect_int(item[1], "id")
        if tag == REQUEST:
            return cls(REQUEST, request_id, expect_str(item[2], "kind"), expect_bytes(item[3], "body"))
        if tag == REPLY:
            return cls(REPLY, request_id, "", expect_bytes(item[2], "body"))
        return cls(REFUSAL, request_id, expect_str(item[2], "code"), expect_bytes(item[3], "detail"))


def encode_items(items: Sequence[StreamItem]) -> bytes:
    return cb([item.to_wire() for item in items])


def decode_items(payload: bytes) -> list[StreamItem]:
    """The items of a frame's payload; raises PeerMalformedError."""
    try:
        return [StreamItem.from_wire(value) for value in expect_list(decode_cb(payload), "frame")]
    except EncodingError as exc:
        raise PeerMalformedError(f"frame: {exc}") from exc
