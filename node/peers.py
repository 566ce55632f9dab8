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
import itertools
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
from node.handshake import Challenge, PeerHello, SessionGrant, format_token
from node.stream import MESSAGE, REFUSAL, REPLY, REQUEST, STREAM_PATH_SUFFIX, StreamCounters, StreamItem
from node.stream_client import StreamConnection, stream_url

PEER_PREFIX = "/peer/v1"
PEER_MESSAGE_PATH = f"{PEER_PREFIX}/message"
CHALLENGE_PATH = f"{PEER_PREFIX}/challenge"
HELLO_PATH = f"{PEER_PREFIX}/hello"
STREAM_PATH = f"{PEER_PREFIX}{STREAM_PATH_SUFFIX}"
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
BACKOFF_CAP_S = 5.0
"""At 58 zones, 3,306 links retry at once after a restart of the alliance: a cap of a few
seconds keeps a recovering peer found quickly without a storm of handshakes."""
HANDSHAKE_TIMEOUT_S = 15.0
"""Opening a stream (challenge, hello, upgrade, key agreement) may wait for a peer busy
starting up; giving up sooner only throws away work the peer already did."""
FRAME_BUDGET_BYTES = 1 << 20
"""A frame batches queued items up to this many bytes (one larger item goes alone)."""
HANDSHAKE_REPLY_MAX_BYTES = 4096
"""A challenge or session grant is under 100 bytes; a problem body a few hundred."""
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
    """Messages and requests written to the peer's stream."""
    failed: int
    """Attempts to reach the peer that failed: no stream, a stream lost, a request unanswered."""
    dropped: int
    """Messages never delivered: evicted (oldest first) from a full queue, or left at close."""
    last_ok_ms: int | None
    """Monotonic-clock milliseconds of the last frame written or reply read; ``None`` if never."""
    consecutive_failures: int
    """Failed attempts since the last success (drives the backoff)."""
    up: bool
    """Whether a keyed stream to the peer is open now; ``False`` until the first one."""
    queued: int
    """Messages and requests waiting in the outbound queue."""
    frames: int = 0
    """Frames written (each batches whatever was queued when the stream was free)."""
    bytes: int = 0
    """Frame bytes written."""


@dataclass(slots=True)
class _Outgoing:
    """A message or request waiting for one peer; a request has the future its caller awaits."""

    item: StreamItem
    reply: asyncio.Future[bytes] | None = None


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
    queue_limit: int
    queue: deque[_Outgoing] = field(default_factory=deque)
    waiting: dict[int, asyncio.Future[bytes]] = field(default_factory=dict)
    """Requests written to the current stream, by id, until their answer arrives."""
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    session: _Session | None = None
    handshake: asyncio.Lock = field(default_factory=asyncio.Lock)
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    frames: int = 0
    bytes: int = 0
    last_ok_ms: int | None = None
    consecutive_failures: int = 0
    up: bool = False
    last_error: str = "not connected yet"

    def on_success(self) -> None:
        self.last_ok_ms = _monotonic_ms()
        self.consecutive_failures = 0
        self.up = True

    def on_unreachable(self) -> None:
        self.failed += 1
        self.consecutive_failures += 1
        self.up = False

    def fail_waiting(self, reason: str) -> None:
        """Fail the requests written to a stream that ended before answering them."""
        waiting, self.waiting = self.waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(PeerUnavailableError(f"peer {self.index}: {reason}"))

    def snapshot(self) -> PeerStats:
        return PeerStats(
            sent=self.sent,
            failed=self.failed,
            dropped=self.dropped,
            last_ok_ms=self.last_ok_ms,
            consecutive_failures=self.consecutive_failures,
            up=self.up,
            queued=len(self.queue),
            frames=self.frames,
            bytes=self.bytes,
        )


def compute_backoff_s(consecutive_failures: int) -> float:
    """Exponential backoff after ``consecutive_failures`` (>= 1), capped at ``BACKOFF_CAP_S``."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(consecutive_failures - 1, 16)))


def take_batch(queue: deque[_Outgoing], budget: int) -> list[_Outgoing]:
    """The queue's oldest items up to ``budget`` bytes (always at least one), removed."""
    batch = [queue.popleft()]
    size = batch[0].item.size
    while queue and size + queue[0].item.size <= budget:
        size += queue[0].item.size
        batch.append(queue.popleft())
    return batch


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class PeerNetwork:
    """A validator's links to every other validator (one instance per node).

    Each link is one stream (``node/stream.py``) kept open by its own task: whatever is
    queued when the stream is free goes out as one frame, so a burst of votes costs one
    write, not one request each. A stream that breaks is reopened with backoff; queued
    items wait for it, requests already written fail at once (their callers retry).
    """

    def __init__(
        self,
        *,
        chain_id: str,
        my_index: int,
        key: SigningKey,
        peers: dict[int, str],
        validators: Sequence[bytes],
        tls: TlsConfig | None = None,
        timeout_s: float = 5.0,
        queue_limit: int = 1000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        frame_budget: int = FRAME_BUDGET_BYTES,
        on_link_up: Callable[[int], None] | None = None,
    ) -> None:
        """``on_link_up(index)`` is called each time a stream to ``index`` opens: what was
        queued for that peer while its link was down has been dropped."""
        if my_index in peers:
            raise ValueError(f"peers: expected every validator but me ({my_index}), got me too")
        if queue_limit < 1:
            raise ValueError(f"queue_limit: expected at least 1, got {queue_limit}")
        self.chain_id = chain_id
        self.my_index = my_index
        self._key = key
        self._validators = tuple(validators)
        self._tls = tls
        self._ssl = tls.ssl_context() if tls is not None else None
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._frame_budget = frame_budget
        self._on_link_up = on_link_up
        self._links = {index: _PeerLink(index, url.rstrip("/"), queue_limit) for index, url in sorted(peers.items())}
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        self._stopping = asyncio.Event()
        self._request_ids = itertools.count(1)
        self.inbound = StreamCounters()
        """What peers' streams brought in (the API's stream route counts into it)."""

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None or self._closed:
            raise RuntimeError("PeerNetwork.start: expected a new network, got one already started")
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            verify=self._ssl if self._ssl is not None else True,
            timeout=httpx.Timeout(self._timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max(1, len(self._links))),
            # Peers are reached directly: never through a proxy or CA bundle from the environment.
            trust_env=False,
            headers={"content-type": MEDIA_TYPE, "accept": f"{MEDIA_TYPE}, {PROBLEM_MEDIA_TYPE}"},
        )
        for link in self._links.values():
            link.task = asyncio.create_task(self._run_link(link), name=f"peer-{link.index}")

    async def close(self) -> None:
        """Stop every link and the client; queued messages are abandoned."""
        self._closed = True
        self._stopping.set()
        for link in self._links.values():
            link.wakeup.set()
        tasks = [link.task for link in self._links.values() if link.task is not None]
        if tasks:
            # Idle and backing-off links return at once; one in the middle of opening a
            # stream gets a moment, because cancelling inside a TLS handshake leaks the socket.
            _, pending = await asyncio.wait(tasks, timeout=min(CLOSE_GRACE_S, self._timeout_s))
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for link in self._links.values():
            link.task = None
            link.dropped += len(link.queue)
            for outgoing in link.queue:
                if outgoing.reply is not None and not outgoing.reply.done():
                    outgoing.reply.set_exception(PeerUnavailableError(f"peer {link.index}: network closed"))
            link.queue.clear()
            link.fail_waiting("network closed")
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
        """A signed single message from this node (the HTTP path of ``POST /peer/v1/message``)."""
        return PeerMessage(self.chain_id, self.my_index, kind, _now_ms(), body).sign(self._key)

    def send(self, index: int, kind: str, body: bytes) -> None:
        """Queue a message for one peer and return at once (fire-and-forget)."""
        self._enqueue(self._link(index), _Outgoing(StreamItem(MESSAGE, kind=kind, body=body)))

    def broadcast(self, kind: str, body: bytes) -> None:
        """Queue one message for every peer and return at once."""
        item = StreamItem(MESSAGE, kind=kind, body=body)
        for link in self._links.values():
            self._enqueue(link, _Outgoing(item))

    def _enqueue(self, link: _PeerLink, outgoing: _Outgoing) -> None:
        if self._closed:
            link.dropped += 1
            if outgoing.reply is not None:
                outgoing.reply.set_exception(PeerUnavailableError(f"peer {link.index}: network closed"))
            return
        if len(link.queue) >= link.queue_limit:
            # A stale consensus message is worth less than a fresh one, and the caller
            # must never wait: the oldest goes.
            evicted = link.queue.popleft()
            link.dropped += 1
            if evicted.reply is not None and not evicted.reply.done():
                evicted.reply.set_exception(PeerUnavailableError(f"peer {link.index}: request dropped from a full queue"))
        link.queue.append(outgoing)
        link.wakeup.set()

    async def request(self, index: int, kind: str, body: bytes) -> bytes:
        """Send one request and return the peer's reply bytes.

        Raises PeerUnavailableError when the peer cannot be reached, does not answer
        within the timeout, or refuses (the refusal's code is in the message).
        """
        link = self._link(index)
        if not link.up and link.consecutive_failures:
            # Its stream failed and is not back: fail at once rather than after a timeout
            # (sync asks the next peer). A link still opening its first stream is waited for.
            link.failed += 1
            raise PeerUnavailableError(f"peer {index}: expected an open stream, got none ({link.last_error})")
        request_id = next(self._request_ids)
        reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._enqueue(link, _Outgoing(StreamItem(REQUEST, request_id, kind, body), reply))
        try:
            return await asyncio.wait_for(reply, self._timeout_s)
        except TimeoutError:
            link.failed += 1
            raise PeerUnavailableError(
                f"peer {index}: expected a reply to {kind} within {self._timeout_s} s, got none"
            ) from None
        finally:
            link.waiting.pop(request_id, None)
            if not reply.done():
                reply.cancel()

    # --- internals --------------------------------------------------------------------

    def _link(self, index: int) -> _PeerLink:
        try:
            return self._links[index]
        except KeyError:
            raise ValueError(f"expected a peer index in {sorted(self._links)}, got {index}") from None

    async def _run_link(self, link: _PeerLink) -> None:
        """Keep a stream to the peer open and write its queue into it, until closed."""
        while not self._closed:
            try:
                connection = await self._open_stream(link)
            except LedgerError as exc:
                link.on_unreachable()
                if link.consecutive_failures == 1 or exc.one_line() != link.last_error:
                    # Once per outage, and again whenever the reason changes.
                    log.info("peer %d down: %s", link.index, exc.one_line())
                link.last_error = exc.one_line()
                await self._back_off(link)
                continue
            except Exception:  # noqa: BLE001 - a dead link task would cut this peer off silently
                link.on_unreachable()
                log.exception("peer %d: unexpected failure while opening a stream", link.index)
                await self._back_off(link)
                continue
            if link.consecutive_failures:
                log.info("peer %d up again", link.index)
            link.on_success()
            if self._on_link_up is not None:
                self._on_link_up(link.index)
            reader = asyncio.create_task(self._read_replies(link, connection), name=f"peer-{link.index}-replies")
            try:
                reason = await self._write_queue(link, connection, reader)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
                await connection.close()
                link.fail_waiting("stream closed before the reply")
            link.last_error = reason
            if not self._closed:
                link.on_unreachable()
                log.info("peer %d stream lost: %s", link.index, reason)
                await self._back_off(link)

    async def _open_stream(self, link: _PeerLink) -> StreamConnection:
        """A keyed stream to ``link``'s peer (a session first, if this node has none)."""
        session = await self._get_session(link)
        try:
            return await StreamConnection.open(
                stream_url(link.base_url, STREAM_PATH), session.token, chain_id=self.chain_id,
                my_index=self.my_index, peer=link.index, key=self._key, validators=self._validators,
                ssl_context=self._ssl, max_bytes=self._max_bytes, timeout_s=max(self._timeout_s, HANDSHAKE_TIMEOUT_S),
            )
        except LedgerError:
            # The peer may have restarted and forgotten the token: the next try starts afresh.
            self._forget_session(link, session)
            raise

    async def _write_queue(self, link: _PeerLink, connection: StreamConnection, reader: asyncio.Task[None]) -> str:
        """Write batches while the stream lives; return why it ended."""
        while not self._closed:
            if reader.done():
                return _ended(reader)
            if not link.queue:
                link.wakeup.clear()
                waiter = asyncio.ensure_future(link.wakeup.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                continue
            batch = take_batch(link.queue, self._frame_budget)
            for outgoing in batch:
                if outgoing.reply is not None:
                    link.waiting[outgoing.item.request_id] = outgoing.reply
            try:
                size = await connection.send_items([outgoing.item for outgoing in batch])
            except PeerUnavailableError as exc:
                # Back to the front, in order, for the next stream (receivers de-duplicate).
                for outgoing in reversed(batch):
                    if outgoing.reply is None or not outgoing.reply.done():
                        link.queue.appendleft(outgoing)
                    if outgoing.reply is not None:
                        link.waiting.pop(outgoing.item.request_id, None)
                return exc.one_line()
            link.sent += len(batch)
            link.frames += 1
            link.bytes += size
            link.on_success()
        return "network closed"

    async def _read_replies(self, link: _PeerLink, connection: StreamConnection) -> None:
        """Hand each reply to the request waiting for it, until the stream ends (raises then)."""
        while True:
            for item in await connection.receive_items():
                future = link.waiting.pop(item.request_id, None)
                if item.tag not in (REPLY, REFUSAL):
                    raise PeerMalformedError(f"peer {link.index}: expected replies on our stream, got {item.tag!r}")
                if future is None or future.done():
                    continue  # its caller gave up waiting
                link.on_success()
                if item.tag == REPLY:
                    future.set_result(item.body)
                else:
                    detail = item.body.decode("utf-8", "replace")[:200]
                    future.set_exception(PeerUnavailableError(f"peer {link.index} refused: {item.kind[:60]}: {detail}"))

    async def _get_session(self, link: _PeerLink) -> _Session:
        """This node's live session at ``link``, after a handshake if it has none."""
        session = link.session
        if session is not None and _monotonic_ms() < session.renew_at_ms:
            return session
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
        if link.session is session:
            link.session = None

    async def _http(
        self, method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one handshake request; return status and body, or raise PeerUnavailableError
        (the one place httpx exceptions are translated)."""
        if self._client is None:
            raise PeerUnavailableError("expected a started PeerNetwork, got one not started or closed")
        try:
            timeout = max(self._timeout_s, HANDSHAKE_TIMEOUT_S)
            async with self._client.stream(method, url, content=data, headers=headers, timeout=timeout) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > HANDSHAKE_REPLY_MAX_BYTES:
                        raise PeerUnavailableError(f"{url}: expected a reply of at most {HANDSHAKE_REPLY_MAX_BYTES} bytes")
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise PeerUnavailableError(f"{url}: expected a reply within {timeout} s, got none") from exc
        except httpx.HTTPError as exc:
            raise PeerUnavailableError(f"{url}: expected a reachable peer, got {type(exc).__name__}: {exc}") from exc

    async def _back_off(self, link: _PeerLink) -> None:
        """Wait before retrying a peer that is down; ``close`` cuts the wait short."""
        # Jitter keeps a recovering peer from being hit by every validator at the same instant.
        delay = compute_backoff_s(link.consecutive_failures) * random.uniform(0.5, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def stats(self) -> dict[int, PeerStats]:
        """A snapshot of every peer link."""
        return {index: link.snapshot() for index, link in self._links.items()}


def _ended(reader: asyncio.Task[None]) -> str:
    if reader.cancelled():
        return "reader cancelled"
    exc = reader.exception()
    if isinstance(exc, LedgerError):
        return exc.one_line()
    return f"{type(exc).__name__}: {exc}" if exc is not None else "stream ended"


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
