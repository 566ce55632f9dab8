"""The dialing side of one peer stream (``node/stream.py``), on the websockets library.

:class:`StreamConnection` opens the WebSocket with a session token, runs the key
agreement, writes tagged frames of items and reads the tagged replies. The websockets
library's exceptions are translated here, once, into
:class:`~ledger.errors.PeerUnavailableError` (the peer went away or never answered) or
the stream's own errors (the peer is not who it should be).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from typing import Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ledger.errors import LedgerError, PeerUnavailableError
from ledger.keys import SigningKey
from node.handshake import HEADER_TOKEN
from node.stream import (
    TAG_SIZE,
    FrameOpener,
    FrameSealer,
    StreamDialer,
    StreamItem,
    decode_items,
    encode_items,
)

PING_INTERVAL_S: Final = 30.0
PING_TIMEOUT_S: Final = 120.0
"""Generous: a validator sharing its cores with 57 others may answer a ping late, and a
late pong must not look like a dead peer (the queue simply waits). At 58 zones on two
cores a 60 s bound closed dozens of live streams, whose reopening then loaded every
validator further. A dead process is seen at once anyway: its kernel closes the socket."""
WRITE_LIMIT: Final = 1 << 20
"""Bytes the library buffers before a send waits for the socket."""


def stream_url(base_url: str, path: str) -> str:
    """``http(s)://host:port`` and a path as a ``ws(s)://`` URL."""
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://"):] + path
    if base_url.startswith("http://"):
        return "ws://" + base_url[len("http://"):] + path
    raise PeerUnavailableError(f"{base_url}: expected an http:// or https:// peer URL")


class StreamConnection:
    """One live, keyed stream to a peer; frames out, replies in."""

    def __init__(self, ws: ClientConnection, sealer: FrameSealer, opener: FrameOpener, peer: int) -> None:
        self._ws = ws
        self._sealer = sealer
        self._opener = opener
        self.peer = peer

    @classmethod
    async def open(
        cls,
        url: str,
        token: str,
        *,
        chain_id: str,
        my_index: int,
        peer: int,
        key: SigningKey,
        validators: Sequence[bytes],
        ssl_context: ssl.SSLContext | None,
        max_bytes: int,
        timeout_s: float,
    ) -> StreamConnection:
        """Connect, key the stream and return it; raises PeerUnavailableError or a PeerError."""
        try:
            ws = await connect(
                url,
                additional_headers={HEADER_TOKEN: token},
                ssl=ssl_context,
                proxy=None,  # peers are reached directly, never through the environment's proxy
                compression=None,  # the validators' cores are worth more than the bytes
                max_size=max_bytes + TAG_SIZE,
                open_timeout=timeout_s,
                ping_interval=PING_INTERVAL_S,
                ping_timeout=PING_TIMEOUT_S,
                close_timeout=1.0,
                write_limit=WRITE_LIMIT,
                user_agent_header=None,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise PeerUnavailableError(f"{url}: expected a stream, got {type(exc).__name__}: {exc}") from exc
        try:
            dialer = StreamDialer(chain_id=chain_id, sender=my_index, receiver=peer, key=key)
            await ws.send(dialer.open_bytes)
            accept = await asyncio.wait_for(ws.recv(), timeout_s)
            if not isinstance(accept, bytes):
                raise PeerUnavailableError(f"{url}: expected a binary stream accept, got text")
            keys = dialer.finish(accept, validators)
        except (LedgerError, ConnectionClosed, TimeoutError, OSError) as exc:
            await ws.close()
            if isinstance(exc, LedgerError):
                raise
            raise PeerUnavailableError(f"{url}: expected a stream accept, got {type(exc).__name__}: {exc}") from exc
        return cls(ws, FrameSealer(keys.send), FrameOpener(keys.receive), peer)

    async def send_items(self, items: Sequence[StreamItem]) -> int:
        """Write one frame of ``items``; return its size. Raises PeerUnavailableError."""
        frame = self._sealer.seal(encode_items(items))
        try:
            await self._ws.send(frame)
        except (ConnectionClosed, OSError) as exc:
            raise PeerUnavailableError(f"peer {self.peer}: stream closed while sending: {exc}") from exc
        return len(frame)

    async def receive_items(self) -> list[StreamItem]:
        """The items of the next frame from the peer; raises PeerUnavailableError when the
        stream ends, PeerFrameError/PeerMalformedError when the frame breaks the rules."""
        try:
            frame = await self._ws.recv()
        except (ConnectionClosed, OSError) as exc:
            raise PeerUnavailableError(f"peer {self.peer}: stream closed: {exc}") from exc
        if not isinstance(frame, bytes):
            raise PeerUnavailableError(f"peer {self.peer}: expected binary frames, got text")
        return decode_items(self._opener.open(frame))

    async def close(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            await self._ws.close()
