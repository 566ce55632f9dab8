"""The peer endpoint ``POST /peer/v1/message``: where other validators' messages enter.

The body is read with a hard size bound (streamed; reading stops past ``max_bytes``),
verified by :func:`node.peers.decode_and_verify` (chain, sender, signature), and only
then handed to the node's handler. Errors are RFC 9457 problem+json with the error's
stable code as ``type``; a stack trace never leaves the process. The routes are kept
out of the OpenAPI schema: they are for validators, not for the public.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from api.errors import PROBLEM_MEDIA_TYPE, internal_problem, problem
from ledger.errors import LedgerError, RequestMalformedError, RequestTooLargeError
from node.peers import DEFAULT_MAX_BYTES, MEDIA_TYPE, PEER_PREFIX, PeerHandler, decode_and_verify

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


def make_peer_router(
    *,
    chain_id: str,
    validators: Sequence[bytes],
    handler: PeerHandler,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> APIRouter:
    """The ``/peer/v1`` router of a node on chain ``chain_id`` with this validator set."""
    keys = tuple(validators)
    router = APIRouter(prefix=PEER_PREFIX, include_in_schema=False)

    # Any content type is accepted: canonical decoding and the signature are the real check.
    @router.post("/message")
    async def post_message(request: Request) -> Response:
        try:
            data = await read_body_bounded(request, max_bytes)
            message = decode_and_verify(data, chain_id=chain_id, validators=keys, max_bytes=max_bytes)
        except LedgerError as exc:
            # api/errors.py maps the codes: 413 too large, 400 malformed, 403 unknown sender, 401 signature.
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

    return router
