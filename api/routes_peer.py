"""The peer endpoints under ``/peer/v1``: where other validators' messages enter.

``GET /challenge`` and ``POST /hello`` are the handshake of ``node/handshake.py``: a
validator proves its key on a body of at most 512 bytes and gets a session token.
``POST /message`` then admits a request in this order, each step before the next costs
anything:

1. the ``X-ZL-Peer-Token`` header names a live session (headers only: a request
   without one gets 401 ``peer.session_invalid`` and its body is never read; the
   response asks the client to close, so the server does not drain the body either);
2. the ``X-ZL-Peer-Kind`` header names a kind, whose limit (``PEER_KIND_MAX_BYTES``,
   at most ``max_bytes``) bounds the declared ``Content-Length`` and the streamed read
   (a validator's oversize body is drained, not closed on, so it reads its 413);
3. :func:`node.peers.decode_and_verify`: canonical form, chain, the declared kind,
   the session's validator as sender, and the message's signature;

and only then hands the message to the node's handler. Errors are RFC 9457
problem+json with the error's stable code as ``type``; a stack trace never leaves the
process. The routes are kept out of the OpenAPI schema: they are for validators, not
for the public.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from api.errors import PROBLEM_MEDIA_TYPE, internal_problem, problem
from ledger.encoding import bounded_repr
from ledger.errors import LedgerError, PeerMalformedError, RequestMalformedError, RequestTooLargeError
from ledger.keys import SigningKey
from node.handshake import HEADER_TOKEN, HELLO_MAX_BYTES, Challenge, PeerSessions
from node.offload import run_off_loop
from node.peers import (
    DEFAULT_MAX_BYTES,
    HEADER_KIND,
    KIND_PATTERN,
    MEDIA_TYPE,
    PEER_PREFIX,
    PeerHandler,
    compute_kind_limit,
    decode_and_verify,
)
from node.stream import STREAM_PATH_SUFFIX, StreamCounters
from node.stream_server import CLOSE_POLICY_VIOLATION, InboundStreams, StreamClosedError, serve_stream

log = logging.getLogger(__name__)

HANDLER_REFUSED_STATUS = 422
"""An authentic message whose content the node refuses, whatever the error's own status."""


def refused_problem(error: LedgerError) -> JSONResponse:
    """422 problem for a LedgerError raised by the node's handler (type = its code)."""
    return JSONResponse(
        {"type": error.code, "title": error.title, "status": HANDLER_REFUSED_STATUS, "detail": str(error)},
        status_code=HANDLER_REFUSED_STATUS,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def unread_problem(error: LedgerError) -> JSONResponse:
    """The problem for a request refused before its body was read: the connection is
    closed after it, so the rest of the body is neither read nor drained."""
    response = problem(error)
    response.headers["Connection"] = "close"
    return response


def get_kind(request: Request) -> str:
    kind = request.headers.get(HEADER_KIND)
    if kind is None or KIND_PATTERN.fullmatch(kind) is None:
        raise PeerMalformedError(f"{HEADER_KIND}: expected a message kind such as 'vote', got {bounded_repr(kind or '')}")
    return kind


async def read_body_bounded(request: Request, max_bytes: int) -> bytes:
    """The raw body, or RequestTooLargeError as soon as it exceeds ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise RequestMalformedError(f"content-length: expected an integer, got {declared[:40]!r}") from None
        # Refuse before reading a byte when the client says up front it is too big.
        if length > max_bytes:
            raise RequestTooLargeError(f"expected a body of at most {max_bytes} bytes, got {length}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise RequestTooLargeError(f"expected a body of at most {max_bytes} bytes, got more")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise RequestMalformedError("expected a whole body, got a disconnect") from exc
    return b"".join(chunks)


class WebSocketChannel:
    """A Starlette WebSocket as the stream loop's :class:`~node.stream_server.FrameChannel`."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> bytes:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise StreamClosedError(f"closed with code {message.get('code')}")
        data = message.get("bytes")
        if data is None:
            raise PeerMalformedError("stream: expected binary frames, got text")
        return bytes(data)

    async def send(self, data: bytes) -> None:
        try:
            await self.websocket.send_bytes(data)
        except (RuntimeError, OSError) as exc:  # Starlette: "after sending 'websocket.close'"
            raise StreamClosedError(str(exc)) from exc

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code, reason)


def make_peer_router(
    *,
    chain_id: str,
    validators: Sequence[bytes],
    handler: PeerHandler,
    max_bytes: int = DEFAULT_MAX_BYTES,
    my_index: int | None = None,
    sessions: PeerSessions | None = None,
    key: SigningKey | None = None,
    counters: StreamCounters | None = None,
) -> APIRouter:
    """The ``/peer/v1`` router of a node on chain ``chain_id`` with this validator set.

    ``my_index`` (this node's validator index) lets a hello addressed to another
    validator be refused by name; without it the challenge's MAC alone binds a hello to
    this node. ``sessions`` is for tests (a clock of their own); by default the router
    keeps its own, in memory.
    """
    keys = tuple(validators)
    if sessions is None:
        sessions = PeerSessions(chain_id=chain_id, validators=keys, my_index=my_index)
    router = APIRouter(prefix=PEER_PREFIX, include_in_schema=False)

    @router.get("/challenge")
    async def get_challenge() -> Response:
        return Response(Challenge(sessions.issue_challenge()).encode(), media_type=MEDIA_TYPE)

    @router.post("/hello")
    async def post_hello(request: Request) -> Response:
        try:
            grant = sessions.accept_hello(await read_body_bounded(request, HELLO_MAX_BYTES))
        except LedgerError as exc:
            return problem(exc)
        return Response(grant.encode(), media_type=MEDIA_TYPE)

    # Any content type is accepted: canonical decoding and the signature are the real check.
    @router.post("/message")
    async def post_message(request: Request) -> Response:
        try:
            # From the headers alone: nothing of the body has been read yet.
            sender = sessions.authenticate(request.headers.get(HEADER_TOKEN))
            kind = get_kind(request)
        except LedgerError as exc:
            return unread_problem(exc)
        limit = compute_kind_limit(kind, max_bytes)
        try:
            data = await read_body_bounded(request, limit)
            # A block batch from an authenticated peer can be tens of MiB: decoded and
            # verified beside the loop that counts votes.
            message = await run_off_loop(
                len(data), decode_and_verify,
                data, chain_id=chain_id, validators=keys, max_bytes=limit, session_sender=sender, kind=kind,
            )
        except LedgerError as exc:
            # api/errors.py maps the codes: 400 malformed, 403 another sender, 401 signature.
            return problem(exc)
        try:
            reply = await handler(message)
        except LedgerError as exc:
            # The message was authentic but the node refuses its content (a stale vote, ...).
            return refused_problem(exc)
        except Exception:  # noqa: BLE001 - the boundary: log it here, never send it out
            log.exception("peer handler failed on %s from validator %d", message.kind, message.sender)
            return internal_problem()
        if reply is None:
            return Response(status_code=204)
        return Response(content=reply, status_code=200, media_type=MEDIA_TYPE)

    if key is not None and my_index is not None:
        stream_key, stream_index = key, my_index
        inbound = InboundStreams()
        stream_counters = counters if counters is not None else StreamCounters()

        @router.websocket(STREAM_PATH_SUFFIX)
        async def stream(websocket: WebSocket) -> None:
            try:
                # From the upgrade's headers: a stranger never gets a WebSocket at all.
                sender = sessions.authenticate(websocket.headers.get(HEADER_TOKEN))
            except LedgerError as exc:
                await websocket.close(CLOSE_POLICY_VIOLATION, exc.code)
                return
            await websocket.accept()
            channel = WebSocketChannel(websocket)
            for old in inbound.admit(sender, channel):
                await old.close(1000, "replaced by a newer stream")
            try:
                await serve_stream(
                    channel, chain_id=chain_id, validators=keys, my_index=stream_index, key=stream_key,
                    sender=sender, handler=handler, max_bytes=max_bytes, counters=stream_counters,
                )
            finally:
                inbound.remove(sender, channel)

    return router
