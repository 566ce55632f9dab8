"""Peer transport over real HTTP: uvicorn servers on 127.0.0.1, PeerNetwork clients, TLS.

Each "node" is a FastAPI app with only the peer router, served by an in-process
``uvicorn.Server`` on a socket bound by the test (bound but not listening means
"connection refused", which is how a node that is down looks; listening on the same
socket later brings it up). Waits are liveness bounds, never timing assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.routes_peer import make_peer_router
from ledger.encoding import cb, decode_cb
from ledger.errors import NotFoundError, PeerUnavailableError
from ledger.keys import SigningKey
from node.handshake import (
    HEADER_TOKEN,
    SESSION_TTL_MS,
    Challenge,
    PeerHello,
    PeerSessions,
    SessionGrant,
    format_token,
)
from node.peers import (
    CHALLENGE_PATH,
    HEADER_KIND,
    HELLO_PATH,
    PEER_MESSAGE_PATH,
    PeerMessage,
    PeerNetwork,
    TlsConfig,
)
from node.tlsutil import issue_cert, make_test_ca

pytestmark = pytest.mark.integration

CHAIN = "zoneledger-peer-test"
KEYS = [SigningKey.from_label(f"peer-it-{i}") for i in range(3)]
VALIDATORS = [key.public for key in KEYS]
LIVENESS_S = 15.0
"""Upper bound for something that should happen promptly; exceeding it fails the test."""


@dataclass
class Node:
    """A peer endpoint that records what reaches its handler."""

    index: int
    sock: socket.socket
    scheme: str = "http"
    received: list[PeerMessage] = field(default_factory=list)
    sessions: PeerSessions | None = None
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.sock.getsockname()[1]}"

    async def handle(self, message: PeerMessage) -> bytes | None:
        self.received.append(message)
        if message.kind == "get_blocks":
            return cb({"from": self.index, "echo": message.body})
        if message.kind == "missing":
            raise NotFoundError("expected a known block, got none")
        if message.kind == "crash":
            raise RuntimeError("secret internal detail")
        return None


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def make_app(node: Node, max_bytes: int, session_ttl_ms: int = SESSION_TTL_MS) -> FastAPI:
    # A new app is a restarted node: it knows no session.
    node.sessions = PeerSessions(chain_id=CHAIN, validators=VALIDATORS, my_index=node.index, session_ttl_ms=session_ttl_ms)
    app = FastAPI()
    app.include_router(make_peer_router(
        chain_id=CHAIN, validators=VALIDATORS, handler=node.handle, max_bytes=max_bytes, sessions=node.sessions,
        my_index=node.index, key=KEYS[node.index],
    ))
    return app


async def serve(
    node: Node, *, max_bytes: int = 1 << 20, certfile: Path | None = None, keyfile: Path | None = None,
    client_ca: Path | None = None, session_ttl_ms: int = SESSION_TTL_MS,
) -> None:
    """Start listening on ``node.sock`` and return once the server accepts connections.

    With ``client_ca`` the server demands a client certificate issued by it (mutual TLS).
    """
    config = uvicorn.Config(
        make_app(node, max_bytes, session_ttl_ms), lifespan="off", ws="websockets-sansio", http="h11",
        log_level="warning", ws_per_message_deflate=False, ws_max_size=max_bytes + 16,
        ssl_certfile=str(certfile) if certfile else None, ssl_keyfile=str(keyfile) if keyfile else None,
        ssl_ca_certs=str(client_ca) if client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    )
    node.server = uvicorn.Server(config)
    node.task = asyncio.create_task(node.server.serve(sockets=[node.sock]))
    await until(lambda: node.server is not None and node.server.started)


async def restart(node: Node, **kwargs: Any) -> None:
    """Stop the node and serve it again on the same port (the server closed the old socket)."""
    port = node.sock.getsockname()[1]
    await stop(node)
    node.sock.close()
    node.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    node.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    node.sock.bind(("127.0.0.1", port))
    await serve(node, **kwargs)


async def stop(node: Node) -> None:
    if node.server is not None and node.task is not None:
        node.server.should_exit = True
        await node.task
    node.server, node.task = None, None


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (polling); fail if it does not hold within LIVENESS_S."""
    async with asyncio.timeout(LIVENESS_S):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def cluster(count: int = 3, *, up: bool = True, max_bytes: int = 1 << 20) -> AsyncIterator[list[Node]]:
    nodes = [Node(i, bound_socket()) for i in range(count)]
    try:
        if up:
            for node in nodes:
                await serve(node, max_bytes=max_bytes)
        yield nodes
    finally:
        await asyncio.gather(*(stop(node) for node in nodes))
        for node in nodes:
            node.sock.close()


def network(me: int, nodes: list[Node], **kwargs: Any) -> PeerNetwork:
    peers = {node.index: node.url for node in nodes if node.index != me}
    return PeerNetwork(chain_id=CHAIN, my_index=me, key=KEYS[me], peers=peers, validators=VALIDATORS, **kwargs)


def run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coro())


async def open_session(node: Node, sender: int, key: SigningKey | None = None) -> httpx.Response:
    """The handshake by hand: the hello's response (200 with a grant, or a problem)."""
    async with httpx.AsyncClient(trust_env=False) as client:
        challenge = Challenge.decode((await client.get(node.url + CHALLENGE_PATH)).content).value
        hello = PeerHello(CHAIN, sender, node.index, challenge).sign(key or KEYS[sender])
        return await client.post(node.url + HELLO_PATH, content=hello)


async def post_raw(node: Node, content: Any, *, sender: int | None = 1, kind: str = "vote", **kwargs: Any) -> httpx.Response:
    """POST raw bytes as ``sender`` (after a handshake of its own), or without a session."""
    headers = {"content-type": "application/msgpack", HEADER_KIND: kind}
    if sender is not None:
        grant = await open_session(node, sender)
        assert grant.status_code == 200, grant.text
        headers[HEADER_TOKEN] = format_token(sender, SessionGrant.decode(grant.content).token)
    async with httpx.AsyncClient(trust_env=False) as client:
        return await client.post(node.url + PEER_MESSAGE_PATH, content=content, headers=headers, **kwargs)


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == type_
    assert problem["status"] == status
    assert set(problem) == {"type", "title", "status", "detail"}
    assert "Traceback" not in response.text
    return problem


# --- delivery ----------------------------------------------------------------------------


def test_broadcast_reaches_every_other_node_in_order() -> None:
    async def scenario() -> None:
        async with cluster() as nodes, network(0, nodes) as net:
            for i in range(20):
                net.broadcast("vote", bytes([i]))
            # The handler runs before the reply reaches the client: wait for both.
            await until(lambda: all(len(n.received) == 20 for n in nodes[1:]))
            await until(lambda: all(s.sent == 20 for s in net.stats().values()))
            for node in nodes[1:]:
                assert [m.body for m in node.received] == [bytes([i]) for i in range(20)]
                assert {(m.sender, m.kind, m.chain_id) for m in node.received} == {(0, "vote", CHAIN)}
            assert nodes[0].received == []
            stats = net.stats()
            assert set(stats) == {1, 2}
            assert all(s.sent == 20 and s.up and s.dropped == 0 and s.last_ok_ms is not None for s in stats.values())

    run(scenario)


def test_send_reaches_only_its_peer() -> None:
    async def scenario() -> None:
        async with cluster() as nodes, network(1, nodes) as net:
            net.send(2, "txs", b"batch")
            await until(lambda: len(nodes[2].received) == 1)
            assert nodes[2].received[0].sender == 1
            assert nodes[0].received == []

    run(scenario)


def test_request_gets_the_reply_and_204_is_empty() -> None:
    async def scenario() -> None:
        async with cluster() as nodes, network(2, nodes) as net:
            reply = await net.request(0, "get_blocks", b"from-5")
            assert decode_cb(reply) == {"from": 0, "echo": b"from-5"}
            assert await net.request(1, "status", b"") == b""

    run(scenario)


def test_handler_ledger_error_is_422_and_crash_is_500_without_details() -> None:
    async def scenario() -> None:
        async with cluster() as nodes, network(0, nodes) as net:
            with pytest.raises(PeerUnavailableError, match="refused: request.not_found: expected a known block"):
                await net.request(1, "missing", b"")
            with pytest.raises(PeerUnavailableError, match="refused: node.error") as crash:
                await net.request(1, "crash", b"")
            assert "secret" not in str(crash.value) and "RuntimeError" not in str(crash.value)
            response = await post_raw(nodes[1], PeerMessage(CHAIN, 0, "crash", 1, b"").sign(KEYS[0]), sender=0, kind="crash")
            problem = assert_problem(response, 500, "node.internal")
            assert "secret" not in response.text and "RuntimeError" not in problem["detail"]

    run(scenario)


# --- refusals ----------------------------------------------------------------------------


def test_non_validator_gets_no_session_and_handler_is_not_called() -> None:
    async def scenario() -> None:
        async with cluster() as nodes:
            outsider = SigningKey.from_label("outsider")
            assert_problem(await open_session(nodes[0], len(VALIDATORS), outsider), 403, "peer.unknown_sender")
            # Claiming a validator's index without its key fails the hello's signature.
            assert_problem(await open_session(nodes[0], 1, outsider), 401, "peer.signature_invalid")
            # Without a session nothing is read: 401 whatever the body says.
            data = PeerMessage(CHAIN, len(VALIDATORS), "vote", 1, b"x").sign(outsider)
            assert_problem(await post_raw(nodes[0], data, sender=None), 401, "peer.session_invalid")
            # Inside validator 1's session, a message of 1 signed by another key fails its signature.
            data = PeerMessage(CHAIN, 1, "vote", 1, b"x").sign(outsider)
            assert_problem(await post_raw(nodes[0], data), 401, "peer.signature_invalid")
            assert nodes[0].received == []

    run(scenario)


def test_tampered_body_gets_401() -> None:
    async def scenario() -> None:
        async with cluster() as nodes:
            wire = decode_cb(PeerMessage(CHAIN, 1, "vote", 1, b"yes").sign(KEYS[1]))
            wire["msg"]["body"] = b"no!"
            assert_problem(await post_raw(nodes[0], cb(wire)), 401, "peer.signature_invalid")
            assert nodes[0].received == []

    run(scenario)


def test_malformed_and_wrong_chain_get_400() -> None:
    async def scenario() -> None:
        async with cluster() as nodes:
            assert_problem(await post_raw(nodes[0], b"\xc1garbage"), 400, "peer.malformed")
            other = PeerMessage("another-chain", 1, "vote", 1, b"").sign(KEYS[1])
            problem = assert_problem(await post_raw(nodes[0], other), 400, "peer.malformed")
            assert "expected chain" in problem["detail"]
            assert nodes[0].received == []

    run(scenario)


def test_oversize_gets_413_declared_or_streamed() -> None:
    async def scenario() -> None:
        async with cluster(max_bytes=1024) as nodes:
            data = PeerMessage(CHAIN, 1, "txs", 1, b"x" * 4096).sign(KEYS[1])
            assert_problem(await post_raw(nodes[0], data, kind="txs"), 413, "request.too_large")

            async def chunks() -> AsyncIterator[bytes]:
                # No Content-Length (chunked): the server must count as it reads.
                for _ in range(8):
                    yield b"y" * 512

            assert_problem(await post_raw(nodes[0], chunks(), kind="txs"), 413, "request.too_large")
            assert nodes[0].received == []
            # The limit is the body size, not a ban on the sender.
            small = PeerMessage(CHAIN, 1, "txs", 1, b"ok").sign(KEYS[1])
            assert (await post_raw(nodes[0], small, kind="txs")).status_code == 204

    run(scenario)


def test_peer_routes_not_in_openapi() -> None:
    node = Node(0, bound_socket())
    try:
        schema = make_app(node, 1024).openapi()
        assert not any(path.startswith("/peer") for path in schema.get("paths", {}))
    finally:
        node.sock.close()


# --- a peer that is down -----------------------------------------------------------------


def test_down_peer_queues_drops_oldest_then_recovers() -> None:
    async def scenario() -> None:
        limit = 5
        async with cluster(up=False) as nodes, network(0, nodes, queue_limit=limit, timeout_s=2.0) as net:
            await serve(nodes[1])
            for i in range(50):  # returns at once although node 2 refuses connections
                net.send(2, "vote", bytes([i]))
            with pytest.raises(PeerUnavailableError, match="reachable peer"):
                await net.request(2, "get_blocks", b"")
            # A down peer does not hold back the others.
            net.broadcast("status", b"alive")
            await until(lambda: [m.body for m in nodes[1].received] == [b"alive"])
            await until(lambda: net.stats()[2].consecutive_failures >= 3)
            down = net.stats()[2]
            assert not down.up and down.sent == 0
            # 50 sent, at most `limit` waiting plus one in flight, the rest evicted oldest first.
            assert down.dropped + down.queued == 51 and down.queued <= limit + 1

            await serve(nodes[2])  # the peer comes back: backoff must find it
            await until(lambda: net.stats()[2].queued == 0)
            bodies = [m.body for m in nodes[2].received if m.kind == "vote"]
            assert bodies == [bytes([i]) for i in range(50 - len(bodies), 50)]
            assert [m.body for m in nodes[2].received if m.kind == "status"] == [b"alive"]
            assert len(bodies) + 1 == down.queued
            after = net.stats()[2]
            assert after.up and after.consecutive_failures == 0 and after.sent == down.queued
            net.send(2, "vote", b"fresh")
            await until(lambda: nodes[2].received[-1].body == b"fresh")

    run(scenario)


# --- sessions ------------------------------------------------------------------------------


def test_one_session_per_peer_carries_every_message() -> None:
    async def scenario() -> None:
        async with cluster() as nodes, network(0, nodes) as net:
            replies = await asyncio.gather(*(net.request(1, "get_blocks", bytes([i])) for i in range(10)))
            assert [decode_cb(r)["echo"] for r in replies] == [bytes([i]) for i in range(10)]
            for i in range(20):
                net.broadcast("vote", bytes([i]))
            await until(lambda: all(s.sent >= 20 for s in net.stats().values()))
            # Concurrent first requests wait for one handshake instead of racing their own.
            assert [n.sessions.session_count() for n in nodes[1:] if n.sessions] == [1, 1]

    run(scenario)


def test_session_is_renewed_when_the_peer_restarts() -> None:
    async def scenario() -> None:
        async with cluster() as nodes, network(0, nodes, timeout_s=5.0) as net:
            net.send(1, "vote", b"before")
            await until(lambda: len(nodes[1].received) == 1)
            await restart(nodes[1], max_bytes=64 << 20)  # it knows no session now: the old token gets 401
            # A big body first: the restarted node refuses it unread and closes the connection,
            # so the client may see a broken connection instead of the 401. Delivered all the same.
            net.send(1, "txs", b"t" * (24 << 20))
            net.send(1, "vote", b"after")
            await until(lambda: [m.body[:6] for m in nodes[1].received] == [b"before", b"tttttt", b"after"])
            assert decode_cb(await net.request(1, "get_blocks", b"again"))["echo"] == b"again"
            assert net.stats()[1].dropped == 0

    run(scenario)


def test_session_is_renewed_when_it_expires() -> None:
    async def scenario() -> None:
        async with cluster(up=False) as nodes, network(0, nodes) as net:
            await serve(nodes[1], session_ttl_ms=300)
            for i in range(4):
                net.send(1, "vote", bytes([i]))
                await until(lambda i=i: len(nodes[1].received) == i + 1)
                await asyncio.sleep(0.2)
            assert net.stats()[1].dropped == 0

    run(scenario)


def test_send_after_close_is_dropped_quietly() -> None:
    async def scenario() -> None:
        async with cluster() as nodes:
            net = network(0, nodes)
            await net.start()
            await net.close()
            net.broadcast("vote", b"late")
            assert all(s.dropped == 1 for s in net.stats().values())
            with pytest.raises(PeerUnavailableError):
                await net.request(1, "status", b"")

    run(scenario)


# --- TLS ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tls_node(index: int, certfile: Path, keyfile: Path, client_ca: Path | None = None) -> AsyncIterator[Node]:
    node = Node(index, bound_socket(), scheme="https")
    try:
        await serve(node, certfile=certfile, keyfile=keyfile, client_ca=client_ca)
        yield node
    finally:
        await stop(node)
        node.sock.close()


def test_tls_verifies_alliance_ca_and_refuses_a_foreign_one(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "ca")
    foreign = make_test_ca(tmp_path / "foreign")
    good_cert, good_key = issue_cert(ca, tmp_path / "good", ["127.0.0.1", "localhost"])
    bad_cert, bad_key = issue_cert(foreign, tmp_path / "bad", ["127.0.0.1", "localhost"])
    client_cert, client_key = issue_cert(ca, tmp_path / "client", ["validator-0"])
    assert oct(good_key.stat().st_mode & 0o777) == "0o600"

    async def scenario() -> None:
        async with tls_node(1, good_cert, good_key) as good, tls_node(2, bad_cert, bad_key) as bad:
            tls = TlsConfig(ca.cert_path, client_cert, client_key)
            peers = {1: good.url, 2: bad.url}
            async with PeerNetwork(chain_id=CHAIN, my_index=0, key=KEYS[0], peers=peers, validators=VALIDATORS, tls=tls) as net:
                reply = await net.request(1, "get_blocks", b"tls")
                assert decode_cb(reply) == {"from": 1, "echo": b"tls"}
                with pytest.raises(PeerUnavailableError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                    await net.request(2, "get_blocks", b"tls")
                net.broadcast("vote", b"over-tls")
                await until(lambda: any(m.body == b"over-tls" for m in good.received))
                assert bad.received == []
                assert net.stats()[1].up and not net.stats()[2].up

    run(scenario)


def test_tls_config_without_client_cert(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "ca")
    cert, key = issue_cert(ca, tmp_path / "srv", ["127.0.0.1"])

    async def scenario() -> None:
        async with tls_node(1, cert, key) as node:
            async with PeerNetwork(
                chain_id=CHAIN, my_index=0, key=KEYS[0], peers={1: node.url}, validators=VALIDATORS, tls=TlsConfig(ca.cert_path)
            ) as net:
                assert await net.request(1, "status", b"") == b""
            # A plain system-trust client must not accept the private CA either.
            ctx = ssl.create_default_context()
            async with httpx.AsyncClient(verify=ctx, trust_env=False) as client:
                with pytest.raises(httpx.ConnectError):
                    await client.post(node.url + PEER_MESSAGE_PATH, content=b"")

    run(scenario)



def test_mutual_tls_client_cert_is_presented(tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "ca")
    cert, key = issue_cert(ca, tmp_path / "srv", ["127.0.0.1"])
    client_cert, client_key = issue_cert(ca, tmp_path / "client", ["validator-0"])

    async def scenario() -> None:
        async with tls_node(1, cert, key, client_ca=ca.cert_path) as node:
            with_cert = TlsConfig(ca.cert_path, client_cert, client_key)
            async with PeerNetwork(
                chain_id=CHAIN, my_index=0, key=KEYS[0], peers={1: node.url}, validators=VALIDATORS, tls=with_cert
            ) as net:
                assert await net.request(1, "status", b"") == b""
            without = TlsConfig(ca.cert_path)
            async with PeerNetwork(
                chain_id=CHAIN, my_index=0, key=KEYS[0], peers={1: node.url}, validators=VALIDATORS, tls=without
            ) as net:
                with pytest.raises(PeerUnavailableError):
                    await net.request(1, "status", b"")
            assert len(node.received) == 1

    run(scenario)
