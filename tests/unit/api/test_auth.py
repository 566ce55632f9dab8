"""api/auth.py: MemberAuth admits signed requests by officers and auditors, once each."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from api.auth import MemberAuth, ReplayGuard
from api.errors import install_error_handlers
from ledger import errors
from ledger.keys import SigningKey
from ledger.requests import HEADER_NODE, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign_request

OFFICER = SigningKey.from_label("auth test officer")
AUDITOR = SigningKey.from_label("auth test auditor")
STRANGER = SigningKey.from_label("auth test stranger")
MEMBERS = {OFFICER.public, AUDITOR.public}
NOW_MS = 1_790_000_000_000
NODE = "EG-TEDA"


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def make_app(clock: FakeClock, node_id: str = NODE) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    member = MemberAuth(MEMBERS.__contains__, node_id=node_id, clock=clock)

    @app.get("/v1/documents/{doc_id:path}")
    def get_document(doc_id: str, key: bytes = Depends(member)) -> dict[str, str]:
        return {"doc_id": doc_id, "reader": key.hex()}

    @app.post("/v1/echo")
    def echo(payload: dict[str, Any], key: bytes = Depends(member)) -> dict[str, Any]:
        return {"payload": payload, "reader": key.hex()}

    return app


def call(app: FastAPI, method: str, url: str, headers: dict[str, str], content: bytes = b"") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.request(method, url, headers=headers, content=content)

    return asyncio.run(go())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS)


@pytest.fixture
def app(clock: FakeClock) -> FastAPI:
    return make_app(clock)


PATH = "/v1/documents/EG-TEDA/CO-1"


def signed(key: SigningKey, method: str = "GET", path: str = PATH, query: str = "", body: bytes = b"",
           at: int = NOW_MS, node: str = NODE) -> dict[str, str]:
    return sign_request(key, method, path, query, body, at, node=node)


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == code


def test_valid_member_request_passes_and_returns_the_key(app: FastAPI) -> None:
    response = call(app, "GET", PATH, signed(OFFICER))
    assert response.status_code == 200
    assert response.json() == {"doc_id": "EG-TEDA/CO-1", "reader": OFFICER.public.hex()}
    assert call(app, "GET", PATH, signed(AUDITOR)).json()["reader"] == AUDITOR.public.hex()


def test_query_and_body_are_covered(app: FastAPI) -> None:
    assert call(app, "GET", PATH + "?v=2", signed(OFFICER, query="v=2")).status_code == 200
    body = b'{"a": 1}'
    headers = signed(OFFICER, "POST", "/v1/echo", body=body, at=NOW_MS + 1) | {"Content-Type": "application/json"}
    response = call(app, "POST", "/v1/echo", headers, body)
    assert response.json() == {"payload": {"a": 1}, "reader": OFFICER.public.hex()}
    other = signed(OFFICER, "POST", "/v1/echo", body=b'{"a": 2}', at=NOW_MS + 2) | {"Content-Type": "application/json"}
    assert_refused(call(app, "POST", "/v1/echo", other, body), 401, "auth.signature_invalid")


def test_percent_encoded_path_verifies_against_the_decoded_path(app: FastAPI) -> None:
    response = call(app, "GET", "/v1/documents/EG-TEDA/CO%231%3F", signed(OFFICER, path="/v1/documents/EG-TEDA/CO#1?"))
    assert response.status_code == 200
    assert response.json()["doc_id"] == "EG-TEDA/CO#1?"


def test_unsigned_request_is_auth_missing(app: FastAPI) -> None:
    assert_refused(call(app, "GET", PATH, {}), 401, "auth.missing")


def test_bad_signature_is_401(app: FastAPI) -> None:
    headers = signed(OFFICER)
    headers[HEADER_SIGNATURE] = "00" * 64
    assert_refused(call(app, "GET", PATH, headers), 401, "auth.signature_invalid")


def test_request_signed_for_another_path_is_refused(app: FastAPI) -> None:
    assert_refused(call(app, "GET", PATH, signed(OFFICER, path="/v1/documents/EG-TEDA/CO-2")), 401,
                   "auth.signature_invalid")


@pytest.mark.parametrize("offset_ms", [-120_000, 120_000])
def test_old_or_future_timestamp_is_auth_stale(app: FastAPI, offset_ms: int) -> None:
    assert_refused(call(app, "GET", PATH, signed(OFFICER, at=NOW_MS + offset_ms)), 401, "auth.stale")


def test_replay_within_the_window_is_auth_replayed(app: FastAPI) -> None:
    headers = signed(OFFICER)
    assert call(app, "GET", PATH, headers).status_code == 200
    assert_refused(call(app, "GET", PATH, headers), 401, "auth.replayed")
    # Hex case does not make a second copy of the same signature acceptable.
    upper = dict(headers)
    upper[HEADER_SIGNATURE] = headers[HEADER_SIGNATURE].upper()
    assert_refused(call(app, "GET", PATH, upper), 401, "auth.replayed")


def test_replay_after_the_window_is_stale_not_accepted(app: FastAPI, clock: FakeClock) -> None:
    headers = signed(OFFICER)
    assert call(app, "GET", PATH, headers).status_code == 200
    clock.ms += 61_000
    assert_refused(call(app, "GET", PATH, headers), 401, "auth.stale")


def test_request_signed_for_node_a_is_refused_by_node_b(clock: FakeClock) -> None:
    # One signed request used to be accepted once by every node (each remembers only its own).
    node_a, node_b = make_app(clock, "EG-TEDA"), make_app(clock, "DJ-DIFTZ")
    headers = signed(OFFICER, node="EG-TEDA")
    assert call(node_a, "GET", PATH, headers).status_code == 200
    assert_refused(call(node_b, "GET", PATH, headers), 401, "auth.wrong_node")
    # Claiming node B in the header does not help: the signature covers the node.
    assert_refused(call(node_b, "GET", PATH, headers | {HEADER_NODE: "DJ-DIFTZ"}), 401, "auth.signature_invalid")
    assert call(node_b, "GET", PATH, signed(OFFICER, node="DJ-DIFTZ")).status_code == 200


def test_non_member_is_403(app: FastAPI) -> None:
    assert_refused(call(app, "GET", PATH, signed(STRANGER)), 403, "auth.not_member")


def test_replay_guard_evicts_expired_entries_and_is_bounded() -> None:
    guard = ReplayGuard(window_ms=1000, max_entries=2)
    guard.admit(b"k", "aa", timestamp_ms=0, now_ms=0)
    guard.admit(b"k", "bb", timestamp_ms=500, now_ms=500)
    with pytest.raises(errors.NodeUnavailableError):
        guard.admit(b"k", "cc", timestamp_ms=600, now_ms=600)
    guard.admit(b"k", "cc", timestamp_ms=1001, now_ms=1001)  # "aa" expired at 1000
    assert len(guard) == 2
    with pytest.raises(errors.AuthReplayError):
        guard.admit(b"k", "bb", timestamp_ms=500, now_ms=1200)
    guard.evict_expired(10_000)
    assert len(guard) == 0


def test_headers_are_the_documented_ones() -> None:
    assert {HEADER_NODE, HEADER_SIGNATURE, HEADER_TIMESTAMP} <= set(signed(OFFICER))
