"""One outsider must not stall the alliance (issue 12), through a real node's app:

* each route admits a body up to its own limit (``ledger.limits``) and answers 413
  problem+json beyond it, before reading it;
* the largest body a public route admits is parsed and checked beside the event loop,
  which keeps turning (the loop also runs consensus);
* path parameters that are no height are 4xx problems, never 500;
* an upload the client aborts is one line in the log, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from one_node import OneNode, make_one_node
from serving import serve_app

from ledger.encoding import cb, decode_cb
from ledger.limits import (
    MAX_OTHER_BODY_BYTES,
    MAX_SUBMISSION_BYTES,
    MAX_VERIFY_BODY_BYTES,
    MAX_VERIFY_UPLOAD_BYTES,
)
from ledger.transactions import DocIssue
from node import offload
from scripts.devkit import load_example, with_number

PROBLEM = "application/problem+json"
COO = "certificate_of_origin"


@pytest.fixture
def one(tmp_path: Path) -> Iterator[OneNode]:
    made = make_one_node(tmp_path)
    yield made
    made.node.store.close()


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == type_ and body["status"] == status
    return body


def nested_empty_objects(size: int, prefix: bytes, suffix: bytes) -> bytes:
    """``prefix [{}, {}, ...] suffix`` of exactly ``size`` bytes: the cheapest JSON to
    send and among the dearest to parse (one object per three bytes)."""
    room = size - len(prefix) - len(suffix) - 2
    count = (room + 1) // 3
    items = b",".join([b"{}"] * count)
    body = prefix + b"[" + items + b"]" + b" " * (room - len(items)) + suffix
    assert len(body) == size
    return body


def unsigned_junk(one: OneNode, count: int) -> list[bytes]:
    """Envelopes on the right chain whose signature is zero: refused at the signature."""
    key = one.alliance.officer_keys[one.zone_id]
    template = decode_cb(one.alliance.sign(key, DocIssue(COO, f"{one.zone_id}/J-1", bytes(32)), nonce=1).encode())
    out = []
    for i in range(count):
        template["tx"]["nonce"] = i + 1
        template["sig"] = bytes(64)
        out.append(cb(template))
    return out


# --- body limits per route ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content_type", "limit"),
    [
        ("POST", "/v1/verify", "application/json", MAX_VERIFY_BODY_BYTES),
        ("POST", "/v1/transactions", "application/json", MAX_SUBMISSION_BYTES),
        ("POST", "/v1/transactions", "application/msgpack", MAX_SUBMISSION_BYTES),
        ("GET", "/v1/status", "application/json", MAX_OTHER_BODY_BYTES),
    ],
)
def test_a_body_one_byte_over_its_routes_limit_is_413(
    one: OneNode, method: str, path: str, content_type: str, limit: int
) -> None:
    body = b" " * (limit + 1)
    response = one.call(method, path, content=body, headers={"content-type": content_type})
    detail = assert_problem(response, 413, "request.too_large")["detail"]
    assert f"at most {limit} bytes" in detail


def test_a_multipart_upload_has_its_own_limit(one: OneNode) -> None:
    pdf = b"%PDF-1.7 " + b"x" * (2 * MAX_VERIFY_BODY_BYTES)  # over the JSON limit, under the upload one
    ok = one.call("POST", "/v1/verify", files={"file": ("scan.pdf", pdf)})
    assert ok.status_code == 200 and ok.json()["verdict"] == "unknown"
    over = one.call("POST", "/v1/verify", files={"file": ("scan.pdf", b"x" * MAX_VERIFY_UPLOAD_BYTES)})
    assert_problem(over, 413, "request.too_large")


def test_a_streamed_body_is_counted_against_its_routes_limit(one: OneNode) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_VERIFY_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    response = one.call("POST", "/v1/verify", content=chunks(), headers={"content-type": "application/json"})
    assert_problem(response, 413, "request.too_large")


def test_the_operators_cap_in_node_toml_still_binds(tmp_path: Path) -> None:
    capped = make_one_node(tmp_path, max_body_bytes=1000)
    try:
        response = capped.call("POST", "/v1/verify", content=b" " * 1001, headers={"content-type": "application/json"})
        assert "at most 1000 bytes" in assert_problem(response, 413, "request.too_large")["detail"]
    finally:
        capped.node.store.close()


# --- the event loop keeps turning -----------------------------------------------------------


class CountingPool(ThreadPoolExecutor):
    """The request pool, counting the work handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="zoneledger-request-test")
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def work_beside_the_loop(
    one: OneNode, request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], monkeypatch: pytest.MonkeyPatch,
) -> tuple[httpx.Response, int, int]:
    """The response, how many pieces of work the request handed to the request pool, and
    how many turns a 1 ms ticker made on the event loop while the request was in flight.

    Not a timing: work parsed or checked on the loop holds it, so the ticker cannot turn
    during it; work handed to the pool leaves the loop free to turn the whole time. How
    long the loop pauses under each body is a benchmark's figure, not a test's bound.
    """
    pool = CountingPool()
    monkeypatch.setattr(offload, "_get_pool", lambda: pool)

    async def go(client: httpx.AsyncClient) -> tuple[httpx.Response, int, int]:
        turns = [0]
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                await asyncio.sleep(0.001)
                turns[0] += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        turns[0] = 0
        try:
            response = await request(client)
        finally:
            done.set()
            await task
        return response, pool.submitted, turns[0]

    try:
        return one.run(go)
    finally:
        pool.shutdown()


def test_verify_of_the_largest_admitted_json_body_does_not_stall_the_event_loop(one: OneNode, monkeypatch: pytest.MonkeyPatch) -> None:
    body = nested_empty_objects(MAX_VERIFY_BODY_BYTES, b'{"document": {"a": ', b"}}")
    response, offloaded, turns = work_beside_the_loop(
        one, lambda c: c.post("/v1/verify", content=body, headers={"content-type": "application/json"}), monkeypatch
    )
    assert response.status_code == 200 and response.json()["verdict"] == "unknown"
    assert offloaded >= 1 and turns >= 2, (offloaded, turns)


def test_verify_of_the_largest_admitted_upload_does_not_stall_the_event_loop(one: OneNode, monkeypatch: pytest.MonkeyPatch) -> None:
    data = nested_empty_objects(MAX_VERIFY_UPLOAD_BYTES - 1024, b'{"a": ', b"}")
    response, offloaded, turns = work_beside_the_loop(
        one, lambda c: c.post("/v1/verify", files={"file": ("a.json", data)}), monkeypatch
    )
    assert response.status_code == 200 and response.json()["verdict"] == "unknown"
    assert offloaded >= 1 and turns >= 2, (offloaded, turns)


def largest_junk_batch(one: OneNode) -> tuple[bytes, int]:
    """A JSON batch of as many unsigned envelopes as the route admits, and their number."""
    items, size = [], 20
    for envelope in unsigned_junk(one, 5000):
        item = json.dumps({"envelope": envelope.hex(), "document": None}).encode()
        if size + len(item) + 1 > MAX_SUBMISSION_BYTES:
            break
        items.append(item)
        size += len(item) + 1
    body = b'{"transactions": [' + b",".join(items) + b"]}"
    assert len(body) <= MAX_SUBMISSION_BYTES
    return body, len(items)


def test_a_batch_of_unsigned_junk_does_not_stall_the_event_loop(one: OneNode, monkeypatch: pytest.MonkeyPatch) -> None:
    body, count = largest_junk_batch(one)
    response, offloaded, turns = work_beside_the_loop(
        one, lambda c: c.post("/v1/transactions", content=body, headers={"content-type": "application/json"}),
        monkeypatch,
    )
    assert response.status_code == 202
    results = response.json()["results"]
    assert len(results) == count > 1500
    assert {r["error"]["type"] for r in results} == {"tx.signature_invalid"}
    assert offloaded >= 1 and turns >= 2, (offloaded, turns)
    # Remembered as refused, as before: the submitter can ask.
    status = one.call("GET", f"/v1/transactions/{one.node.mempool.rejections.__iter__().__next__().hex()}")
    assert status.json()["status"] == "rejected"


def test_the_largest_json_submission_does_not_stall_the_event_loop(one: OneNode, monkeypatch: pytest.MonkeyPatch) -> None:
    body = nested_empty_objects(MAX_SUBMISSION_BYTES, b'{"transactions": ', b"}")
    response, offloaded, turns = work_beside_the_loop(
        one, lambda c: c.post("/v1/transactions", content=body, headers={"content-type": "application/json"}),
        monkeypatch,
    )
    assert "at most 5000" in assert_problem(response, 413, "request.too_large")["detail"]
    assert offloaded >= 1 and turns >= 2, (offloaded, turns)


def test_honest_submissions_keep_their_answers(one: OneNode) -> None:
    document = with_number(load_example("coo_preferential.json"), COO, "H-1")
    envelope, _ = one.alliance.issue(one.zone_id, COO, document, "H-1")
    single = one.call("POST", "/v1/transactions", json={"envelope": envelope.encode().hex(), "document": document})
    assert single.status_code == 202 and single.json() == {"tx_hash": envelope.tx_hash.hex(), "status": "pending"}
    items = []
    for i in range(150):  # three chunks of admission, with refusals mixed in
        doc = with_number(load_example("coo_preferential.json"), COO, f"H-B{i}")
        env, _ = one.alliance.issue(one.zone_id, COO, doc, f"H-B{i}")
        items.append({"envelope": env.encode().hex(), "document": doc})
    items[7]["envelope"] = unsigned_junk(one, 1)[0].hex()
    items[100]["envelope"] = "00"
    items[120] = items[0]
    batch = one.call("POST", "/v1/transactions", json={"transactions": items})
    results = batch.json()["results"]
    assert [r["status"] for r in results].count("pending") == 148
    assert results[7]["error"]["type"] == "tx.signature_invalid"
    assert results[100]["status"] == "rejected" and results[100]["error"]["type"].startswith("encoding.")
    assert results[120] == results[0]
    assert len(one.node.mempool) == 1 + 147


# --- path parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("height", [str(2**64), "1" * 40, "-1", "abc", "1.5"])
def test_header_height_that_is_no_uint64_is_a_4xx_problem(one: OneNode, height: str) -> None:
    assert_problem(one.call("GET", f"/v1/headers/{height}"), 400, "request.malformed")


def test_header_height_not_committed_is_not_found(one: OneNode) -> None:
    assert_problem(one.call("GET", f"/v1/headers/{2**64 - 1}"), 404, "request.not_found")


@pytest.mark.parametrize("path", ["a" * 300, "a%00b", "x/" * 2000])
def test_odd_static_paths_are_not_found_not_500(one: OneNode, path: str) -> None:
    assert_problem(one.call("GET", f"/static/{path}"), 404, "request.not_found")


def test_an_unknown_transaction_hash_is_not_echoed_whole(one: OneNode) -> None:
    body = assert_problem(one.call("GET", "/v1/transactions/" + "ab" * 4000), 404, "request.not_found")
    assert len(body["detail"]) < 200


# --- an aborted upload ------------------------------------------------------------------------


@pytest.fixture
def served(one: OneNode) -> Iterator[tuple[str, int]]:
    # log_config=None: the app's own loggers reach caplog (the aborted-upload line).
    with serve_app(one.app, log_config=None, log_level=None) as address:
        yield address


@pytest.mark.parametrize(
    ("path", "head"),
    [
        ("/v1/verify", b"Content-Type: application/json\r\n"),
        ("/v1/transactions", b"Content-Type: application/json\r\n"),
        ("/v1/verify", b"Content-Type: multipart/form-data; boundary=XX\r\n"),
    ],
    ids=["verify-json", "transactions", "verify-upload"],
)
def test_an_aborted_upload_is_one_line_in_the_log(
    served: tuple[str, int], caplog: pytest.LogCaptureFixture, path: str, head: bytes
) -> None:
    host, port = served
    caplog.set_level(logging.INFO)
    with socket.create_connection((host, port)) as conn:
        conn.sendall(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + head + b"Content-Length: 100000\r\n\r\n"
            + b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n' + b"{" * 5000
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while not any("disconnected" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not problems, [r.getMessage() for r in problems]
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0].getMessage()
    assert path in lines[0].getMessage()
