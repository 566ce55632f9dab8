"""The node's HTTP application and the server that runs it beside the validator.

One FastAPI app serves the public, officer and member API under ``/v1`` (OpenAPI at
``/docs``), the peer endpoints under ``/peer/v1``, health and metrics. Errors are
problem+json (``api.errors``); a body beyond its route's limit (``BODY_LIMITS``, from
``ledger.limits``, capped by the operator's ``max_body_bytes``) gets 413 before anything
reads it. Responses to clients that accept gzip are compressed (a proof bundle is
mostly hex and shrinks to about 40 %); peer traffic is not, since validators share
their cores with the work compression would slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import cast

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import BodyLimitMiddleware, install_error_handlers
from api.page import make_page_router
from api.routes_evidence import make_evidence_router
from api.routes_governance import make_governance_router
from api.routes_member import make_member_router
from api.routes_peer import make_peer_router
from api.routes_proofs import make_proof_router
from api.routes_public import make_public_router
from ledger.limits import (
    MAX_OTHER_BODY_BYTES,
    MAX_PEER_BODY_BYTES,
    MAX_SUBMISSION_BYTES,
    MAX_VERIFY_BODY_BYTES,
    MAX_VERIFY_UPLOAD_BYTES,
)
from node.observer import ObserverNode
from node.peers import PEER_MESSAGE_PATH, PEER_PREFIX
from node.runtime import Node
from node.stream import TAG_SIZE as STREAM_TAG_SIZE
from node.stream_client import PING_INTERVAL_S, PING_TIMEOUT_S

log = logging.getLogger("zoneledger.api")
LATENCY_SAMPLES = 2000
GZIP_MINIMUM_BYTES = 1024
GZIP_LEVEL = 6
SWITCH_INTERVAL_S = 0.001
SHUTDOWN_GRACE_S = 3
"""How long a stopping node lets open requests and peer streams finish before cancelling them."""


class ClientGZipMiddleware:
    """gzip for client responses (when the client accepts it), never for ``exclude_prefix``."""

    def __init__(self, app: ASGIApp, *, exclude_prefix: str = PEER_PREFIX) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=GZIP_LEVEL)
        self.exclude_prefix = exclude_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not str(scope.get("path", "")).startswith(self.exclude_prefix):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


BODY_LIMITS: dict[tuple[str, str], int] = {
    ("POST", "/v1/transactions"): MAX_SUBMISSION_BYTES,
    ("POST", "/v1/verify"): MAX_VERIFY_BODY_BYTES,
    ("POST", PEER_MESSAGE_PATH): MAX_PEER_BODY_BYTES,
}
"""Each route that takes a body, and its limit (``ledger.limits`` says why each is sized so)."""


def compute_body_limit(scope: Scope) -> int:
    """The body limit of a request: its route's (a multipart upload to ``/v1/verify`` has
    its own), ``MAX_OTHER_BODY_BYTES`` for every other route."""
    method, path = scope.get("method", ""), scope.get("path", "")
    if (method, path) == ("POST", "/v1/verify") and _is_multipart(scope):
        return MAX_VERIFY_UPLOAD_BYTES
    return BODY_LIMITS.get((method, path), MAX_OTHER_BODY_BYTES)


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).lower().startswith(b"multipart/form-data")
    return False


def new_app() -> FastAPI:
    app = FastAPI(
        title="zoneledger",
        version="1",
        description="A permissioned ledger of trade documents for an alliance of free trade zones.",
    )
    install_error_handlers(app)
    return app


def include_read_routes(app: FastAPI, node: Node) -> None:
    """The routes a validator and an observer both serve, from the same code."""
    app.include_router(make_public_router(node))
    app.include_router(make_member_router(node))
    app.include_router(make_proof_router(node))
    app.include_router(make_evidence_router(node))
    app.include_router(make_governance_router(node))
    app.include_router(make_page_router(node))


def create_app(node: Node) -> FastAPI:
    """A validator's app: the read routes, submission and the peer endpoints."""
    app = new_app()
    include_read_routes(app, node)
    app.include_router(
        make_peer_router(
            chain_id=node.genesis.chain_id,
            validators=node.genesis.validators,
            handler=node.on_peer_message,
            max_bytes=min(node.config.max_body_bytes, MAX_PEER_BODY_BYTES),
            my_index=node.index,
            key=node.key,
            counters=node.peers.inbound,
        )
    )
    install_middleware(app, node)
    return app


def create_observer_app(node: ObserverNode) -> FastAPI:
    """An observer's app: the same read routes (its ``require_ready`` refuses every
    write with ``node.read_only``), no peer endpoints. It offers what those routes read
    of a node (``node/observer.py`` lists it); their annotations name the validator's class."""
    app = new_app()
    include_read_routes(app, cast(Node, node))
    install_middleware(app, node)
    return app


def build_app(node: Node | ObserverNode) -> FastAPI:
    return create_app(node) if isinstance(node, Node) else create_observer_app(node)


def install_middleware(app: FastAPI, node: Node | ObserverNode) -> None:
    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        samples = node.metrics.request_latency.setdefault(name, [])
        samples.append(time.perf_counter() - started)
        if len(samples) > LATENCY_SAMPLES:
            del samples[: len(samples) - LATENCY_SAMPLES]
        return response

    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["content-type"],
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=node.config.max_body_bytes, limit_for=compute_body_limit)
    app.add_middleware(ClientGZipMiddleware)


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: the node stops both cleanly on SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(node: Node | ObserverNode) -> None:
    """Run the validator (or observer) and its HTTP server until SIGINT or SIGTERM, then stop both cleanly."""
    # The event loop shares the interpreter with the request workers (api.offload): it
    # waits at most this long for its turn after a peer's vote arrives, instead of 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    await node.start()
    config = node.config
    ssl_args = {}
    if config.tls:
        ssl_args = {"ssl_certfile": str(config.tls.cert), "ssl_keyfile": str(config.tls.key)}
    server = _Server(
        uvicorn.Config(
            build_app(node),
            host=config.listen_host,
            port=config.listen_port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            # Peer streams never end by themselves: without a bound, a stop waited for
            # every peer to close its side (at 58 zones some were SIGKILLed after 15 s).
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            lifespan="off",
            # Peer streams (node/stream.py): frames up to the peer limit, no compression
            # (the cores are worth more than the bytes), pings tolerant of a busy peer.
            ws="websockets-sansio",
            ws_max_size=min(config.max_body_bytes, MAX_PEER_BODY_BYTES) + STREAM_TAG_SIZE,
            ws_per_message_deflate=False,
            ws_ping_interval=PING_INTERVAL_S,
            ws_ping_timeout=PING_TIMEOUT_S,
            **ssl_args,  # type: ignore[arg-type]
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, setattr, server, "should_exit", True)
    try:
        await server.serve()
    finally:
        await node.stop()


def run_node(node: Node | ObserverNode) -> None:
    asyncio.run(serve(node))
