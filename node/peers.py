"""Peer transport: the signed peer message and the validator-to-validator HTTP client.

Validators talk to each other over HTTP (``POST /peer/v1/message``, served by
``api/routes_peer.py``). Every message is a :class:`PeerMessage` signed by the sender's
validator key over ``PEER_DOMAIN || cb(msg)``; :func:`decode_and_verify` is the one
place that accepts one off the wire. The body is opaque here: each ``kind`` (proposal,
vote, txs, commit, status, get_blocks, ...) carries its own canonical bytes and its own
signatures where the protocol needs them, so this layer only proves *which validator*
sent the bytes.

:class:`PeerNetwork` is a node's outbound side: one persistent ``httpx.AsyncClient``
(HTTP/1.1 keep-alive, optionally TLS against the alliance CA), one bounded queue and
one sender task per peer. ``send``/``broadcast`` never block the caller (consensus must
not stall on a slow zone); a full queue drops its oldest message; a peer that is down
is retried with exponential backoff. ``request`` is the request/response path for
block sync. httpx exceptions are translated here, once, into
:class:`~ledger.errors.PeerUnavailableError`.

Replays: a captured message can be re-sent by anyone who saw it (``time_ms`` is
informational only). That is harmless because every consensus body is idempotent at
the receiver (votes and proposals are de-duplicated by their own signatures); TLS
keeps outsiders from seeing them in the first place.
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
    PeerMalformedError,
    PeerSignatureError,
    PeerUnavailableError,
    PeerUnknownSenderError,
)
from ledger.keys import PEER_DOMAIN, SIGNATURE_SIZE, SigningKey, signing_bytes, verify_bytes

PEER_PREFIX = "/peer/v1"
PEER_MESSAGE_PATH = f"{PEER_PREFIX}/message"
MEDIA_TYPE = "application/msgpack"
PROBLEM_MEDIA_TYPE = "application/problem+json"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Largest signed peer message accepted (a block batch for sync fits comfortably)."""

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


def decode_and_verify(data: bytes, *, chain_id: str, validators: Sequence[bytes], max_bytes: int) -> PeerMessage:
    """Accept a signed peer message or raise; the checks run in this order:

    size, canonical form and exact fields, chain id, sender index, signature.
    """
    if len(data) > max_bytes:
        raise PeerMalformedError(f"expected at most {max_bytes} bytes, got {len(data)}")
    message, sig = decode_signed(data)
    if message.chain_id != chain_id:
        raise PeerMalformedError(f"chain_id: expected chain {chain_id!r}, got {message.chain_id[:80]!r}")
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


@dataclass(slots=True)
class _PeerLink:
    """Mutable per-peer state owned by :class:`PeerNetwork`."""

    index: int
    url: str
    queue: deque[bytes]
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: bytes | None = None
    task: asyncio.Task[None] | None = None
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
            index: _PeerLink(index, url.rstrip("/") + PEER_MESSAGE_PATH, deque(maxlen=queue_limit))
            for index, url in sorted(peers.items())
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
        self._enqueue(self._link(index), self.sign(kind, body))

    def broadcast(self, kind: str, body: bytes) -> None:
        """Queue one signed message for every peer and return at once."""
        data = self.sign(kind, body)
        for link in self._links.values():
            self._enqueue(link, data)

    def _enqueue(self, link: _PeerLink, data: bytes) -> None:
        if self._closed:
            link.dropped += 1
            return
        if len(link.queue) == link.queue.maxlen:
            # deque(maxlen) evicts the oldest on append: a stale consensus message is
            # worth less than a fresh one, and the caller must never wait.
            link.dropped += 1
        link.queue.append(data)
        link.wakeup.set()

    async def request(self, index: int, kind: str, body: bytes) -> bytes:
        """Send one message and return the peer's reply bytes (``b""`` for 204).

        Raises PeerUnavailableError when the peer cannot be reached, times out, or
        answers with anything but a 2xx (the problem ``type`` is in the message).
        """
        link = self._link(index)
        try:
            status, content = await self._post(link.url, self.sign(kind, body))
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

    async def _post(self, url: str, data: bytes) -> tuple[int, bytes]:
        """POST ``data``; return status and body, or raise PeerUnavailableError (the one
        place httpx exceptions are translated)."""
        if self._client is None:
            raise PeerUnavailableError("expected a started PeerNetwork, got one not started or closed")
        try:
            async with self._client.stream("POST", url, content=data) as response:
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
                status, content = await self._post(link.url, link.in_flight)
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
            elif status >= 500 or status in (408, 429):
                # The peer is overloaded or failing, not refusing this message: retry it.
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


def _problem_type(content: bytes) -> str:
    """The ``type`` of an RFC 9457 problem body, for error messages; ``?`` if absent."""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        value = json.loads(content)
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            return str(value["type"])[:80]
    return "?"
