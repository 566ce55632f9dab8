"""api/routes_peer.py in process: the handshake, and peer traffic refused before it costs anything.

The "not read" tests drive the app through raw ASGI and count every body byte the app
pulls from its receive channel, with the same middleware in front as ``api/app.py``
(the body limit and a pass-through ``@app.middleware("http")``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from api.errors import BodyLimitMiddleware, install_error_handlers
from api.routes_peer import make_peer_router
from ledger.keys import SigningKey
from node.handshake import (
    CHALLENGE_TTL_MS,
    HEADER_TOKEN,
    Challenge,
    PeerHello,
    PeerSessions,
    SessionGrant,
    format_token,
)
from node.peers import (
    CHALLENGE_PATH,
    DEFAULT_MAX_BYTES,
    HEADER_KIND,
    HELLO_PATH,
    PEER_KIND_MAX_BYTES,
    PEER_MESSAGE_PATH,
    PeerMessage,
)

CHAIN = "peer-routes-test"
KEYS = [SigningKey.from_label(f"peer routes {i}") for i in range(4)]
VALIDATORS = [k.public for k in KEYS]
BIG = 32 * 1024 * 1024
CHUNK = 1024 * 1024


class Clock:
    def __init__(self) -> None:
        self.ms = 5_000_000

    def __call__(self) -> int:
        return self.ms


class Node:
    """One validator's peer router, with what reached its handler."""

    def __init__(self, index: int, clock: Clock | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.index = index
        self.received: list[PeerMessage] = []
        self.sessions = PeerSessions(chain_id=CHAIN, validators=VALIDATORS, my_index=index, clock=clock or Clock())
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(make_peer_router(
            chain_id=CHAIN, validators=VALIDATORS, handler=self.handle, max_bytes=max_bytes, sessions=self.sessions,
        ))

        @app.middleware("http")
        async def passthrough(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            return await call_next(request)

        app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
        self.app = app

    async def handle(self, message: PeerMessage) -> bytes | None:
        self.received.append(message)
        return None

    def call(self, method: str, path: str, content: bytes = b"", headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://peer") as client:
                return await client.request(method, path, content=content, headers=headers)

        return asyncio.run(go())

    def challenge(self) -> bytes:
        response = self.call("GET", CHALLENGE_PATH)
        assert response.status_code == 200 and response.headers["content-type"] == "application/msgpack"
        return Challenge.decode(response.content).value

    def hello(self, sender: int, receiver: int | None = None, key: SigningKey | None = None) -> bytes:
        receiver = self.index if receiver is None else receiver
        return PeerHello(CHAIN, sender, receiver, self.challenge()).sign(key or KEYS[sender])

    def login(self, sender: int) -> str:
        response = self.call("POST", HELLO_PATH, self.hello(sender))
        assert response.status_code == 200, response.text
        return format_token(sender, SessionGrant.decode(response.content).token)

    def post(self, token: str | None, message: bytes, kind: str = "vote") -> httpx.Response:
        headers = {HEADER_KIND: kind, "content-type": "application/msgpack"}
        if token is not None:
            headers[HEADER_TOKEN] = token
        return self.call("POST", PEER_MESSAGE_PATH, message, headers)


def signed(sender: int, kind: str = "vote", body: bytes = b"\x01", key: SigningKey | None = None) -> bytes:
    return PeerMessage(CHAIN, sender, kind, 1, body).sign(key or KEYS[sender])


def assert_problem(response: httpx.Response, status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == type_


# --- the cost of a request without a session --------------------------------------------


def run_raw(app: Any, headers: list[tuple[bytes, bytes]], body_size: int) -> tuple[int, dict[bytes, bytes], int]:
    """Drive ``app`` with a POST whose body is offered in 1 MiB chunks; return the status,
    the response headers and how many body bytes the app pulled."""
    pulled = 0
    offered = 0
    status = 0
    response_headers: dict[bytes, bytes] = {}

    async def receive() -> dict[str, Any]:
        nonlocal pulled, offered
        if offered >= body_size:
            await asyncio.sleep(3600)  # a client still sending: the app must not wait for it
        size = min(CHUNK, body_size - offered)
        offered += size
        pulled += size
        return {"type": "http.request", "body": b"\x00" * size, "more_body": offered < body_size}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update({k.lower(): v for k, v in message.get("headers", [])})

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PEER_MESSAGE_PATH, "raw_path": PEER_MESSAGE_PATH.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
    }

    async def go() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=30)

    asyncio.run(go())
    return status, response_headers, pulled


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_unauthenticated_32_mib_body_is_refused_without_being_read(declared: bool) -> None:
    node = Node(0)
    headers = [(b"content-type", b"application/msgpack"), (HEADER_KIND.lower().encode(), b"txs")]
    if declared:
        headers.append((b"content-length", str(BIG).encode()))
    for token in (None, b"1." + b"ab" * 32):  # no token, and a made-up one
        sent = headers + ([(HEADER_TOKEN.lower().encode(), token)] if token else [])
        status, response_headers, pulled = run_raw(node.app, sent, BIG)
        assert status == 401
        assert pulled == 0
        assert response_headers[b"connection"] == b"close"  # and the server will not drain it
    assert node.received == []


def test_unauthenticated_request_is_401_problem_json() -> None:
    node = Node(0)
    assert_problem(node.post(None, signed(1)), 401, "peer.session_invalid")
    assert_problem(node.post("1." + "00" * 32, signed(1)), 401, "peer.session_invalid")
    assert node.received == []


def test_authenticated_body_over_its_kinds_limit_is_refused_unread() -> None:
    node = Node(0)
    token = node.login(1).encode()
    headers = [(HEADER_TOKEN.lower().encode(), token), (HEADER_KIND.lower().encode(), b"vote"),
               (b"content-length", str(BIG).encode())]
    status, _, pulled = run_raw(node.app, headers, BIG)
    assert status == 413 and pulled == 0
    # Without a declared length it stops at the kind's limit, not at the node's.
    status, _, pulled = run_raw(node.app, headers[:2], BIG)
    assert status == 413 and pulled <= PEER_KIND_MAX_BYTES["vote"] + CHUNK


# --- sessions ----------------------------------------------------------------------------


def test_session_admits_its_validators_messages() -> None:
    node = Node(0)
    token = node.login(1)
    assert node.post(token, signed(1)).status_code == 204
    assert node.post(token, signed(1, "txs", b"x" * 100_000), kind="txs").status_code == 204
    assert [(m.sender, m.kind) for m in node.received] == [(1, "vote"), (1, "txs")]


def test_token_of_validator_1_cannot_send_as_validator_2() -> None:
    node = Node(0)
    token = node.login(1)
    # Validator 1's session carrying a message of validator 2 (even one 2 really signed).
    assert_problem(node.post(token, signed(2)), 403, "peer.sender_mismatch")
    # Validator 1's token presented as validator 2's.
    assert_problem(node.post("2." + token.split(".")[1], signed(2)), 401, "peer.session_invalid")
    # Within its own session a message must still carry validator 1's signature.
    assert_problem(node.post(token, signed(1, key=KEYS[2])), 401, "peer.signature_invalid")
    assert node.received == []


def test_declared_kind_must_be_the_messages_kind() -> None:
    node = Node(0)
    token = node.login(1)
    # A big "txs" message declared as a small kind would dodge nothing: the kinds must agree.
    assert_problem(node.post(token, signed(1, "txs"), kind="status"), 400, "peer.malformed")
    assert_problem(node.post(token, signed(1), kind="Not A Kind"), 400, "peer.malformed")


def test_hello_replayed_at_another_node_or_later_is_refused() -> None:
    clock = Clock()
    a, b = Node(0, clock), Node(2, clock)
    data = a.hello(1)
    assert_problem(b.call("POST", HELLO_PATH, data), 401, "peer.hello_invalid")
    renamed = PeerHello(CHAIN, 1, 2, a.challenge()).sign(KEYS[1])  # for node 2, on node 0's challenge
    assert_problem(b.call("POST", HELLO_PATH, renamed), 401, "peer.hello_invalid")
    late = a.hello(1)
    clock.ms += CHALLENGE_TTL_MS
    assert_problem(a.call("POST", HELLO_PATH, late), 401, "peer.hello_invalid")
    assert a.call("POST", HELLO_PATH, data).status_code == 401  # expired as well by now
    fresh = a.hello(1)
    assert a.call("POST", HELLO_PATH, fresh).status_code == 200
    assert_problem(a.call("POST", HELLO_PATH, fresh), 401, "peer.hello_invalid")  # used once


def test_hello_from_outsiders_and_oversize_hellos() -> None:
    node = Node(0)
    outsider = SigningKey.from_label("outsider")
    assert_problem(node.call("POST", HELLO_PATH, node.hello(1, key=outsider)), 401, "peer.signature_invalid")
    assert_problem(node.call("POST", HELLO_PATH, node.hello(4, key=outsider)), 403, "peer.unknown_sender")
    assert_problem(node.call("POST", HELLO_PATH, b"\x00" * 4096), 413, "request.too_large")


def test_handshake_routes_not_in_openapi() -> None:
    assert not any(path.startswith("/peer") for path in Node(0).app.openapi().get("paths", {}))
