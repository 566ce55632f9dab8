"""The accepting side of peer streams (``node/stream.py``): one loop per inbound stream.

The HTTP layer (``api/routes_peer.py``) authenticates the upgrade by its session token
and hands the WebSocket over as a :class:`FrameChannel`; :func:`serve_stream` then runs
the key agreement and reads frames until the stream ends. Messages are handed to the
node in the order they were sent (as the HTTP path did, one exchange at a time);
requests run beside the loop, at most :data:`MAX_OPEN_REQUESTS` per stream, and each
answer goes back as its own frame. Anything that breaks the stream's rules (a bad tag,
an unreadable frame, a kind over its size limit, a reply sent to the acceptor) ends the
stream: the dialer opens a new one. :class:`InboundStreams` keeps at most
:data:`STREAMS_PER_SENDER` live streams per validator, closing the oldest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Final, Protocol

from ledger.errors import LedgerError, PeerMalformedError
from ledger.keys import SigningKey
from node.peers import KIND_PATTERN, PeerHandler, PeerMessage, compute_kind_limit
from node.stream import (
    MESSAGE,
    REFUSAL,
    REPLY,
    REQUEST,
    TAG_SIZE,
    FrameOpener,
    FrameSealer,
    StreamCounters,
    StreamItem,
    accept_stream,
    decode_items,
    encode_items,
)

log = logging.getLogger("zoneledger.stream")

HANDSHAKE_TIMEOUT_S: Final = 10.0
"""How long a dialer has to send its signed open after the upgrade."""
MAX_OPEN_REQUESTS: Final = 16
"""Requests of one stream answered at once; the next waits (and so does the stream)."""
STREAMS_PER_SENDER: Final = 2
"""Live inbound streams per validator: a reconnect may overlap the stream it replaces."""
MAX_DETAIL_BYTES: Final = 512
CLOSE_POLICY_VIOLATION: Final = 1008


class StreamClosedError(Exception):
    """The other end closed the stream (not a fault of either side)."""


class FrameChannel(Protocol):
    """One WebSocket, as the stream loop needs it (binary messages only)."""

    async def receive(self) -> bytes:
        """The next binary message; raises StreamClosedError when the stream ends."""
        ...

    async def send(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class InboundStreams:
    """The live inbound streams, at most ``STREAMS_PER_SENDER`` per validator."""

    def __init__(self) -> None:
        self._live: dict[int, list[FrameChannel]] = {}

    def admit(self, sender: int, channel: FrameChannel) -> list[FrameChannel]:
        """Register ``channel``; return the channels it displaces (the caller closes them)."""
        live = self._live.setdefault(sender, [])
        live.append(channel)
        displaced = live[:-STREAMS_PER_SENDER]
        del live[:-STREAMS_PER_SENDER]
        return displaced

    def remove(self, sender: int, channel: FrameChannel) -> None:
        live = self._live.get(sender, [])
        with contextlib.suppress(ValueError):
            live.remove(channel)

    def count(self) -> int:
        return sum(len(live) for live in self._live.values())


async def serve_stream(
    channel: FrameChannel,
    *,
    chain_id: str,
    validators: Sequence[bytes],
    my_index: int,
    key: SigningKey,
    sender: int,
    handler: PeerHandler,
    max_bytes: int,
    counters: StreamCounters | None = None,
) -> None:
    """Run one inbound stream of validator ``sender`` (its session already checked) to its end.

    Returns when the dialer closes; closes the channel itself, with the reason, when the
    dialer breaks the protocol. Never raises.
    """
    counters = counters if counters is not None else StreamCounters()
    requests: set[asyncio.Task[None]] = set()
    try:
        open_bytes = await asyncio.wait_for(channel.receive(), HANDSHAKE_TIMEOUT_S)
        accept_bytes, keys = accept_stream(
            open_bytes, chain_id=chain_id, validators=validators, my_index=my_index, session_sender=sender, key=key,
        )
        await channel.send(accept_bytes)
        opener, sealer = FrameOpener(keys.receive), FrameSealer(keys.send)
        sending = asyncio.Lock()
        slots = asyncio.Semaphore(MAX_OPEN_REQUESTS)

        async def answer(item: StreamItem) -> None:
            try:
                reply = await _handle(handler, chain_id, sender, item)
                out = StreamItem(REPLY, item.request_id, body=reply or b"")
            except LedgerError as exc:
                out = StreamItem(REFUSAL, item.request_id, exc.code, str(exc).encode()[:MAX_DETAIL_BYTES])
            except Exception:  # noqa: BLE001 - the boundary: logged here, never sent out
                log.exception("peer request %s from validator %d failed", item.kind, sender)
                out = StreamItem(REFUSAL, item.request_id, "node.error", b"the node failed to answer; see its log")
            finally:
                slots.release()
            with contextlib.suppress(StreamClosedError):
                async with sending:
                    await channel.send(sealer.seal(encode_items([out])))

        while True:
            frame = await channel.receive()
            items = decode_items(opener.open(frame))
            counters.count(len(frame), items)
            for item in items:
                check_item(item, max_bytes)
                if item.tag == MESSAGE:
                    try:
                        await _handle(handler, chain_id, sender, item)
                    except LedgerError as exc:
                        # An authentic message whose content the node refuses (a stale vote, ...).
                        log.debug("message %s from validator %d refused: %s", item.kind, sender, exc.one_line())
                    except Exception:  # noqa: BLE001 - the node's fault, not the stream's: go on
                        log.exception("peer message %s from validator %d failed", item.kind, sender)
                else:
                    await slots.acquire()
                    task = asyncio.create_task(answer(item))
                    requests.add(task)
                    task.add_done_callback(requests.discard)
    except (StreamClosedError, asyncio.CancelledError):
        pass
    except TimeoutError:
        await _close(channel, "expected a signed stream open in time")
    except LedgerError as exc:
        log.warning("stream from validator %d closed: %s", sender, exc.one_line())
        await _close(channel, exc.code)
    except Exception:  # noqa: BLE001 - one stream's failure must not take the node down
        log.exception("stream from validator %d failed", sender)
        await _close(channel, "node.error")
    finally:
        for task in requests:
            task.cancel()


def check_item(item: StreamItem, max_bytes: int) -> None:
    """A dialer sends only messages and requests, of known shape and within their kind's limit."""
    if item.tag not in (MESSAGE, REQUEST):
        raise PeerMalformedError(f"item: expected a message or request from the dialer, got {item.tag!r}")
    if KIND_PATTERN.fullmatch(item.kind) is None:
        raise PeerMalformedError(f"item: expected a kind such as 'vote', got {item.kind[:40]!r}")
    limit = compute_kind_limit(item.kind, max_bytes) - TAG_SIZE
    if len(item.body) > limit:
        raise PeerMalformedError(f"item {item.kind}: expected at most {limit} bytes, got {len(item.body)}")


async def _handle(handler: PeerHandler, chain_id: str, sender: int, item: StreamItem) -> bytes | None:
    return await handler(PeerMessage(chain_id, sender, item.kind, time.time_ns() // 1_000_000, item.body))


async def _close(channel: FrameChannel, reason: str) -> None:
    with contextlib.suppress(Exception):
        await channel.close(CLOSE_POLICY_VIOLATION, reason[:120])
