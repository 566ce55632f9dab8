"""Peer transport: the signed peer message and the validator-to-validator HTTP client.

Validators talk to each other over HTTP (``POST /peer/v1/message``, served by
``api/routes_peer.py``). Every message is a :class:`PeerMessage` signed by the sender's
validator key over ``PEER_DOMAIN || cb(msg)``; :func:`decode_and_verify` is the one
place that accepts one off the wire. The body is opaque here: each ``kind`` (proposal,
vote, txs, commit, status, get_blocks, ...) carries its own canonical bytes and its own
signatures where the protocol needs them, so this layer only proves *which validator*
sent the bytes.

Before any of that costs the receiver a read, a request must carry a session token
(``X-ZL-Peer-Token``) from the handshake of ``node/handshake.py``, and its kind
(``X-ZL-Peer-Kind``), whose body limit (:data:`PEER_KIND_MAX_BYTES`) is checked
against ``Content-Length`` and while reading.

:class:`PeerNetwork` is a node's outbound side: one persistent ``httpx.AsyncClient``
(HTTP/1.1 keep-alive, optionally TLS against the alliance CA), one bounded queue and
one sender task per peer. ``send``/``broadcast`` never block the caller (consensus must
not stall on a slow zone); a full queue drops its oldest message; a peer that is down
is retried with exponential backoff. ``request`` is the request/response path for
block sync. Sessions are opened lazily, one per peer, renewed before they expire, again
when the peer answers 401 ``peer.session_invalid`` (it restarted), and after any failed
exchange (a peer that refuses a stale token before reading a large body may close the
connection before its 401 arrives). httpx exceptions are translated here, once, into
:class:`~ledger.errors.PeerUnavailableError`.

Replays: a captured message can be re-sent within a live session of its sender, so by
the sender or by whoever read that session's token off a plain-HTTP wire (``time_ms``
is informational only). That is harmless because every consensus body is idempotent
at the receiver (votes and proposals are de-duplicated by their own signatures); TLS
keeps outsiders from seeing messages and tokens in the first place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ledger.encoding import cb, decode_cb, expect_bytes, expect_int, expect_map, expect_str
from ledger.errors import (
    EncodingError,
    LedgerError,
    PeerMalformedError,
    PeerSenderMismatchError,
    PeerSessionError,
    PeerSignatureError,
    PeerUnavailableError,
    PeerUnknownSenderError,
)
from ledger.keys import PEER_DOMAIN, SIGNATURE_SIZE, SigningKey, signing_bytes, verify_bytes
from ledger.limits import MAX_PEER_COMMIT_MESSAGE_BYTES, MAX_PEER_MESSAGE_BYTES, MAX_PEER_SMALL_MESSAGE_BYTES
from node.handshake import HEADER_TOKEN, Challenge, PeerHello, SessionGrant, format_token

PEER_PREFIX = "/peer/v1"
PEER_MESSAGE_PATH = f"{PEER_PREFIX}/message"
CHALLENGE_PATH = f"{PEER_PREFIX}/challenge"
HELLO_PATH = f"{PEER_PREFIX}/hello"
HEADER_KIND = "X-ZL-Peer-Kind"
MEDIA_TYPE = "application/msgpack"
PROBLEM_MEDIA_TYPE = "application/problem+json"
DEFAULT_MAX_BYTES = MAX_PEER_MESSAGE_BYTES
"""Largest signed peer message accepted (a block batch for sync fits comfortably)."""
SMALL_KIND_MAX_BYTES = MAX_PEER_SMALL_MESSAGE_BYTES
PEER_KIND_MAX_BYTES: dict[str, int] = {
    "vote": SMALL_KIND_MAX_BYTES,
    "status": SMALL_KIND_MAX_BYTES,
    "get_block": SMALL_KIND_MAX_BYTES,
    "get_blocks": SMALL_KIND_MAX_BYTES,
    "commit": MAX_PEER_COMMIT_MESSAGE_BYTES,
}
"""Largest whole signed message per kind, where it is far below the node's limit (a vote
is about 400 bytes, a certificate about 100 per validator); other kinds (``proposal``
with its block, ``txs``) may use all of it."""
SESSION_RENEW_MARGIN_MS = 60_000
"""A session is renewed this long before the peer would expire it (at most half its life)."""

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A kind is a short lowercase identifier: ``vote``, ``get_blocks``; at most 32 chars."""

BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
CLOSE_GRACE_S = 1.0
"""How long ``close`` lets an exchange in progress finish before cancelling it."""

_MESSAGE_FIELDS = frozenset({"chain_id", "sender", "kind", "time_ms", "body"})
_SIGNED_FIELDS = frozenset({"msg", "sig"})

log = logging.getLogger(__name__)


# --- the wire type -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerMessage:
    """One validator-to-validator message, before signing / after verification."""

    chain_id: str
    """The genesis chain id; a message for another chain is refused."""
    sender: int
    """The sender's index in the validator set; its key must have signed."""
    kind: str
    """What ``body`` is: a short lowercase identifier such as ``vote`` or ``get_blocks``."""
    time_ms: int
    """Sender's clock, Unix milliseconds; informational (logs, skew), never trusted."""
    body: bytes
    """The kind's own canonical bytes, opaque to the transport."""

    def __post_init__(self) -> None:
        if KIND_PATTERN.fullmatch(self.kind) is None:
            raise PeerMalformedError(
                f"kind: expected a lowercase identifier of at most 32 characters, got {self.kind[:40]!r}"
            )
        if self.sender < 0:
            raise PeerMalformedError(f"sender: expected a validator index >= 0, got {self.sender}")
        if self.time_ms < 0:
            raise PeerMalformedError(f"time_ms: expected an integer >= 0, got {self.time_ms}")

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "sender": self.sender,
            "kind": self.kind,
            "time_ms": self.time_ms,
            "body": self.body,
        }

    def signing_bytes(self) -> bytes:
        """``PEER_DOMAIN || cb(msg)``: what the sender's signature covers."""
        return signing_bytes(PEER_DOMAIN, self.to_wire())

    def sign(self, key: SigningKey) -> bytes:
        """The wire bytes ``cb({"msg": msg, "sig": sig})`` signed by ``key``."""
        return cb({"msg": self.to_wire(), "sig": key.sign_bytes(self.signing_bytes())})

    @classmethod
    def from_wire(cls, value: Any) -> PeerMessage:
        m = expect_map(value, "msg", _MESSAGE_FIELDS)
        return cls(
            chain_id=expect_str(m["chain_id"], "msg.chain_id"),
            sender=expect_int(m["sender"], "msg.sender"),
            kind=expect_str(m["kind"], "msg.kind"),
            time_ms=expect_int(m["time_ms"], "msg.time_ms"),
            body=expect_bytes(m["body"], "msg.body"),
        )


def decode_signed(data: bytes) -> tuple[PeerMessage, bytes]:
    """Parse the signed form into the message and its signature (no verification)."""
    try:
        m = expect_map(decode_cb(data), "peer message", _SIGNED_FIELDS)
        return PeerMessage.from_wire(m["msg"]), expect_bytes(m["sig"], "sig", SIGNATURE_SIZE)
    except EncodingError as exc:
        raise PeerMalformedError(f"peer message: {exc}") from exc


def compute_kind_limit(kind: str, max_bytes: int) -> int:
    """Largest signed message of ``kind`` a node with limit ``max_bytes`` accepts."""
    return min(PEER_KIND_MAX_BYTES.get(kind, max_bytes), max_bytes)


def decode_and_verify(
    data: bytes,
    *,
    chain_id: str,
    validators: Sequence[bytes],
    max_bytes: int,
    session_sender: int | None = None,
    kind: str | None = None,
) -> PeerMessage:
    """Accept a signed peer message or raise; the checks run in this order:

    size, canonical form and exact fields, chain id, the kind the request declared
    (``kind``), the session's validator (``session_sender``), sender index, signature.
    """
    if len(data) > max_bytes:
        raise PeerMalformedError(f"expected at most {max_bytes} bytes, got {len(data)}")
    message, sig = decode_signed(data)
    if message.chain_id != chain_id:
        raise PeerMalformedError(f"chain_id: expected chain {chain_id!r}, got {message.chain_id[:80]!r}")
    if kind is not None and message.kind != kind:
        raise PeerMalformedError(f"kind: expected {kind!r} as the request declared, got {message.kind!r}")
    if session_sender is not None and message.sender != session_sender:
        raise PeerSenderMismatchError(
            f"sender: expected validator {session_sender}, whose session this is, got {message.sender}"
        )
    if message.sender >= len(validators):
        raise PeerUnknownSenderError(
            f"sender: expected a validator index below {len(validators)}, got {message.sender}"
        )
    verify_bytes(
        validators[message.sender], message.signing_bytes(), sig, PeerSignatureError,
        f"peer message from validator {message.sender}",
    )
    return message


PeerHandler = Callable[[PeerMessage], Awaitable[bytes | None]]
"""What a node does with a verified message: reply bytes, or ``None`` for no reply."""


# --- TLS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """How this node authenticates peers' servers (and, optionally, itself to them)."""

    ca_file: str | Path
    """PEM bundle of the alliance CA; the only roots trusted for peer connections."""
    cert_file: str | Path | None = None
    """Client certificate presented to peers (mutual TLS), or ``None``."""
    key_file: str | Path | None = None
    """Private key of ``cert_file``, or ``None`` when the key is inside ``cert_file``."""

    def ssl_context(self) -> ssl.SSLContext:
        # Only the alliance CA: a publicly trusted certificate must not pass as a zone.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        if self.cert_file is not None:
            context.load_cert_chain(str(self.cert_file), None if self.key_file is None else str(self.key_file))
        return context


# --- the outbound side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerStats:
    """A snapshot of one peer's link, for status pages and metrics."""

    sent: int
    """Messages the peer accepted with a 2xx (queued sends and requests)."""
    failed: int
    """Delivery attempts that failed: unreachable, timed out, 5xx, or refused with a 4xx."""
    dropped: int
    """Messages never delivered: evicted (oldest first) from a full queue, or refused with a 4xx."""
    last_ok_ms: int | None
    """Monotonic-clock milliseconds of the last 2xx from the peer; ``None`` if never."""
    consecutive_failures: int
    """Failed attempts since the last success (drives the backoff)."""
    up: bool
    """Whether the last attempt reached the peer; ``False`` until the first contact."""
    queued: int
    """Messages waiting in the outbound queue (including one in flight)."""


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A signed message waiting for one peer, with the kind its request declares."""

    kind: str
    data: bytes


@dataclass(frozen=True, slots=True)
class _Session:
    """This node's session at one peer."""

    token: str
    """The ``X-ZL-Peer-Token`` header value."""
    renew_at_ms: int
    """Monotonic-clock ms after which a new handshake is made before sending."""


@dataclass(slots=True)
class _PeerLink:
    """Mutable per-peer state owned by :class:`PeerNetwork`."""

    index: int
    base_url: str
    queue: deque[_Outgoing]
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: _Outgoing | None = None
    task: asyncio.Task[None] | None = None
    session: _Session | None = None
    handshake: asyncio.Lock = field(default_factory=asyncio.Lock)
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    last_ok_ms: int | None = None
    consecutive_failures: int = 0
    up: bool = False

    def on_success(self) -> None:
        self.sent += 1
        self.last_ok_ms = time.monotonic_ns() // 1_000_000
        self.consecutive_failures = 0
        self.up = True

    def on_unreachable(self) -> None:
        self.failed += 1
        self.consecutive_failures += 1
        self.up = False

    def on_refused(self) -> None:
        # The peer answered, so it is up; the message itself will never be accepted.
        self.failed += 1
        self.dropped += 1
        self.consecutive_failures = 0
        self.up = True

    def snapshot(self) -> PeerStats:
        return PeerStats(
            sent=self.sent,
            failed=self.failed,
            dropped=self.dropped,
            last_ok_ms=self.last_ok_ms,
            consecutive_failures=self.consecutive_failures,
            up=self.up,
            queued=len(self.queue) + (self.in_flight is not None),
        )


def compute_backoff_s(consecutive_failures: int) -> float:
    """Exponential backoff after ``consecutive_failures`` (>= 1), capped at ``BACKOFF_CAP_S``."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(consecutive_failures - 1, 16)))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class PeerNetwork:
    """A validator's links to every other validator (one instance per node)."""

    def __init__(
        self,
        *,
        chain_id: str,
        my_index: int,
        key: SigningKey,
        peers: dict[int, str],
        tls: TlsConfig | None = None,
        timeout_s: float = 5.0,
        queue_limit: int = 1000,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if my_index in peers:
            raise ValueError(f"peers: expected every validator but me ({my_index}), got me too")
        if queue_limit < 1:
            raise ValueError(f"queue_limit: expected at least 1, got {queue_limit}")
        self.chain_id = chain_id
        self.my_index = my_index
        self._key = key
        self._tls = tls
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._links = {
            index: _PeerLink(index, url.rstrip("/"), deque(maxlen=queue_limit)) for index, url in sorted(peers.items())
        }
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        self._stopping = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None or self._closed:
            raise RuntimeError("PeerNetwork.start: expected a new network, got one already started")
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            verify=self._tls.ssl_context() if self._tls is not None else True,
            timeout=httpx.Timeout(self._timeout_s),
            # One keep-alive connection per peer for the queue, more for concurrent requests.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=4 * max(1, len(self._links))),
            # Peers are reached directly: never through a proxy or CA bundle from the environment.
            trust_env=False,
            headers={"content-type": MEDIA_TYPE, "accept": f"{MEDIA_TYPE}, {PROBLEM_MEDIA_TYPE}"},
        )
        for link in self._links.values():
            link.task = asyncio.create_task(self._drain(link), name=f"peer-{link.index}")

    async def close(self) -> None:
        """Stop every sender task and the client; queued messages are abandoned."""
        self._closed = True
        self._stopping.set()
        for link in self._links.values():
            link.wakeup.set()
        tasks = [link.task for link in self._links.values() if link.task is not None]
        if tasks:
            # Idle and backing-off senders return at once; one in the middle of an exchange
            # gets a moment to finish, because cancelling httpx inside a TLS handshake
            # leaks the socket.
            _, pending = await asyncio.wait(tasks, timeout=min(CLOSE_GRACE_S, self._timeout_s))
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for link in self._links.values():
            link.task = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __aenter__(self) -> PeerNetwork:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- sending ----------------------------------------------------------------------

    def sign(self, kind: str, body: bytes) -> bytes:
        """Wire bytes of a message from this node (signed once, sent to any number of peers)."""
        return PeerMessage(self.chain_id, self.my_index, kind, _now_ms(), body).sign(self._key)

    def send(self, index: int, kind: str, body: bytes) -> None:
        """Queue a message for one peer and return at once (fire-and-forget)."""
        self._enqueue(self._link(index), _Outgoing(kind, self.sign(kind, body)))

    def broadcast(self, kind: str, body: bytes) -> None:
        """Queue one signed message for every peer and return at once."""
        outgoing = _Outgoing(kind, self.sign(kind, body))
        for link in self._links.values():
            self._enqueue(link, outgoing)

    def _enqueue(self, link: _PeerLink, outgoing: _Outgoing) -> None:
        if self._closed:
            link.dropped += 1
            return
        if len(link.queue) == link.queue.maxlen:
            # deque(maxlen) evicts the oldest on append: a stale consensus message is
            # worth less than a fresh one, and the caller must never wait.
            link.dropped += 1
        link.queue.append(outgoing)
        link.wakeup.set()

    async def request(self, index: int, kind: str, body: bytes) -> bytes:
        """Send one message and return the peer's reply bytes (``b""`` for 204).

        Raises PeerUnavailableError when the peer cannot be reached, times out, or
        answers with anything but a 2xx (the problem ``type`` is in the message).
        """
        link = self._link(index)
        try:
            status, content = await self._exchange(link, _Outgoing(kind, self.sign(kind, body)))
        except PeerUnavailableError:
            link.on_unreachable()
            raise
        if 200 <= status < 300:
            link.on_success()
            return content
        if status >= 500:
            link.on_unreachable()
        else:
            link.on_refused()
        raise PeerUnavailableError(f"peer {index}: expected a 2xx reply, got {status} {_problem_type(content)}")

    # --- internals --------------------------------------------------------------------

    def _link(self, index: int) -> _PeerLink:
        try:
            return self._links[index]
        except KeyError:
            raise ValueError(f"expected a peer index in {sorted(self._links)}, got {index}") from None

    async def _exchange(self, link: _PeerLink, outgoing: _Outgoing) -> tuple[int, bytes]:
        """POST one message under this node's session at ``link``; return status and body.

        A 401 ``peer.session_invalid`` (the peer restarted, or expired the token first)
        opens a new session and sends once more. Any failure forgets the session, so the
        next attempt starts with a handshake. Raises PeerUnavailableError.
        """
        try:
            session = await self._get_session(link)
            status, content = await self._post_message(link, session, outgoing)
            if _is_session_refusal(status, content):
                self._forget_session(link, session)
                status, content = await self._post_message(link, await self._get_session(link), outgoing)
            return status, content
        except PeerUnavailableError:
            link.session = None
            raise

    async def _post_message(self, link: _PeerLink, session: _Session, outgoing: _Outgoing) -> tuple[int, bytes]:
        headers = {HEADER_TOKEN: session.token, HEADER_KIND: outgoing.kind}
        return await self._http("POST", link.base_url + PEER_MESSAGE_PATH, outgoing.data, headers)

    async def _get_session(self, link: _PeerLink) -> _Session:
        """This node's live session at ``link``, after a handshake if it has none."""
        session = link.session
        if session is not None and _monotonic_ms() < session.renew_at_ms:
            return session
        # One handshake per peer at a time: concurrent requests wait for it and share it.
        async with link.handshake:
            session = link.session
            if session is None or _monotonic_ms() >= session.renew_at_ms:
                session = link.session = await self._handshake(link)
            return session

    async def _handshake(self, link: _PeerLink) -> _Session:
        """Challenge, signed hello, token (``node/handshake.py``); raises PeerUnavailableError."""
        started = _monotonic_ms()
        status, content = await self._http("GET", link.base_url + CHALLENGE_PATH)
        if status != 200:
            raise PeerUnavailableError(f"peer {link.index}: expected a challenge, got {status} {_problem_type(content)}")
        try:
            challenge = Challenge.decode(content).value
            hello = PeerHello(self.chain_id, self.my_index, link.index, challenge).sign(self._key)
            status, content = await self._http("POST", link.base_url + HELLO_PATH, hello)
            if status != 200:
                raise PeerUnavailableError(
                    f"peer {link.index}: expected a session for our hello, got {status} {_problem_type(content)}"
                )
            grant = SessionGrant.decode(content)
        except PeerUnavailableError:
            raise
        except LedgerError as exc:
            raise PeerUnavailableError(f"peer {link.index}: expected a handshake, got {exc.one_line()}") from exc
        # Counted from before the challenge was asked for, so the peer's expiry comes later.
        margin = min(SESSION_RENEW_MARGIN_MS, grant.ttl_ms // 2)
        return _Session(format_token(self.my_index, grant.token), started + grant.ttl_ms - margin)

    @staticmethod
    def _forget_session(link: _PeerLink, session: _Session) -> None:
        # Only the session that failed: a concurrent request may already have a newer one.
        if link.session is session:
            link.session = None

    async def _http(
        self, method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request; return status and body, or raise PeerUnavailableError (the one
        place httpx exceptions are translated)."""
        if self._client is None:
            raise PeerUnavailableError("expected a started PeerNetwork, got one not started or closed")
        try:
            async with self._client.stream(method, url, content=data, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():  # decoded: the bound holds after gzip too
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise PeerUnavailableError(f"{url}: expected a reply of at most {self._max_bytes} bytes")
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise PeerUnavailableError(f"{url}: expected a reply within {self._timeout_s} s, got none") from exc
        except httpx.HTTPError as exc:
            raise PeerUnavailableError(f"{url}: expected a reachable peer, got {type(exc).__name__}: {exc}") from exc

    async def _drain(self, link: _PeerLink) -> None:
        """Deliver one peer's queue in order until closed; back off while the peer is down."""
        while not self._closed:
            if link.in_flight is None:
                if not link.queue:
                    link.wakeup.clear()
                    await link.wakeup.wait()
                    continue
                # Held outside the deque so an overflow cannot evict the message being sent.
                link.in_flight = link.queue.popleft()
            try:
                status, content = await self._exchange(link, link.in_flight)
            except PeerUnavailableError as exc:
                link.on_unreachable()
                if link.consecutive_failures == 1:
                    log.info("peer %d down: %s", link.index, exc)
                await self._back_off(link)
                continue
            except Exception:  # noqa: BLE001 - a dead sender task would cut this peer off silently
                link.on_unreachable()
                log.exception("peer %d: unexpected failure while sending", link.index)
                await self._back_off(link)
                continue
            if 200 <= status < 300:
                link.on_success()
                link.in_flight = None
            elif status >= 500 or status in (408, 429) or _is_session_refusal(status, content):
                # The peer is overloaded or failing (or lost a session just opened), not
                # refusing this message: retry it.
                link.on_unreachable()
                await self._back_off(link)
            else:
                # 4xx: the peer will never accept these bytes; retrying would block the queue.
                link.on_refused()
                link.in_flight = None
                log.warning("peer %d refused a message: %d %s", link.index, status, _problem_type(content))

    async def _back_off(self, link: _PeerLink) -> None:
        """Wait before retrying a peer that is down; ``close`` cuts the wait short."""
        # Jitter keeps a recovering peer from being hit by every validator at the same instant.
        delay = compute_backoff_s(link.consecutive_failures) * random.uniform(0.5, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def stats(self) -> dict[int, PeerStats]:
        """A snapshot of every peer link."""
        return {index: link.snapshot() for index, link in self._links.items()}


def _is_session_refusal(status: int, content: bytes) -> bool:
    """A 401 for the session, not for the message: a new session may succeed."""
    return status == 401 and _problem_type(content) == PeerSessionError.code


def _problem_type(content: bytes) -> str:
    """The ``type`` of an RFC 9457 problem body, for error messages; ``?`` if absent."""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        value = json.loads(content)
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            return str(value["type"])[:80]
    return "?"
