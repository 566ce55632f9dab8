"""api/errors.py: every error class has a status, and every failure leaves as problem+json."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from api.errors import (
    INTERNAL_TYPE,
    PROBLEM_MEDIA_TYPE,
    STATUS_BY_CODE,
    BodyLimitMiddleware,
    install_error_handlers,
    problem,
    status_for,
)
from ledger import errors
from ledger.errors import LedgerError, all_error_classes

CLASSES = all_error_classes()
BY_CODE = {cls.code: cls for cls in CLASSES}


# --- the mapping ------------------------------------------------------------------


def test_error_codes_are_unique() -> None:
    codes = [cls.code for cls in CLASSES]
    assert len(codes) == len(set(codes))
    assert INTERNAL_TYPE not in codes


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.code)
def test_every_error_class_maps_to_an_http_error_status(cls: type[LedgerError]) -> None:
    assert status_for(cls) in {400, 401, 403, 404, 409, 413, 422, 500, 503}
    assert status_for(cls("x")) == status_for(cls)


def test_every_family_is_classified_on_purpose() -> None:
    # A new direct child of LedgerError must get its own entry, not inherit 500 silently.
    for cls in LedgerError.__subclasses__():
        assert cls.code in STATUS_BY_CODE, cls.code


def test_mapping_names_only_real_codes() -> None:
    assert set(STATUS_BY_CODE) <= set(BY_CODE)


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.NonCanonicalError, 400),
        (errors.MalformedTransactionError, 400),
        (errors.DocumentJsonError, 400),
        (errors.HsCodeError, 422),
        (errors.DocumentSchemaError, 422),
        (errors.SignatureInvalidError, 422),
        (errors.NotOfficerOfZoneError, 422),
        (errors.ReplayedTransactionError, 409),
        (errors.DocumentExistsError, 409),
        (errors.StaleSupersedesError, 409),
        (errors.DocumentTooLargeError, 413),
        (errors.RequestTooLargeError, 413),
        (errors.DocumentNotFoundError, 404),
        (errors.NotFoundError, 404),
        (errors.AuthMissingError, 401),
        (errors.AuthSignatureError, 401),
        (errors.AuthStaleError, 401),
        (errors.AuthReplayError, 401),
        (errors.AuthNotMemberError, 403),
        (errors.MempoolFullError, 503),
        (errors.NodeUnavailableError, 503),
        (errors.StoreCorruptError, 500),
        (errors.KeyPassphraseError, 500),
        (errors.DocumentRegistrationError, 422),
        (errors.ConfigError, 500),  # the node's own settings; was 400 while it hung under RequestError
    ],
)
def test_chosen_statuses(cls: type[LedgerError], status: int) -> None:
    assert status_for(cls) == status


def test_unlisted_subclass_takes_its_nearest_ancestor() -> None:
    class LocalAuthError(errors.AuthStaleError):
        code = "test.local_auth"

    assert status_for(LocalAuthError) == 401


def test_problem_body_carries_code_title_detail_path_and_tx_index() -> None:
    error = errors.HsCodeError("expected at least 6 digits, got '22'", path="goodsItems[0].commodityCode")
    error.tx_index = 3
    response = problem(error, instance="/v1/transactions")
    assert response.status_code == 422
    assert response.media_type == PROBLEM_MEDIA_TYPE
    import json

    body = json.loads(bytes(response.body))
    assert body == {
        "type": "doc.hs_code", "title": errors.HsCodeError.title, "status": 422,
        "detail": "goodsItems[0].commodityCode: expected at least 6 digits, got '22'",
        "instance": "/v1/transactions", "path": "goodsItems[0].commodityCode", "tx_index": 3,
    }


def test_mempool_full_says_when_to_retry() -> None:
    response = problem(errors.MempoolFullError("expected room, got 10000 pending"))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1


# --- the handlers, through a tiny app -------------------------------------------------


def make_app(max_bytes: int | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{code}")
    def raise_code(code: str) -> None:
        raise BY_CODE[code]("expected something, got another thing")

    @app.get("/items/{number}")
    def item(number: int) -> dict[str, int]:
        return {"number": number}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret /etc/zoneledger/officer.pem detail")

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/json")
    def parsed(payload: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(payload)}

    if max_bytes is not None:
        app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
    return app


class Client:
    """Synchronous calls into an ASGI app through httpx's in-process transport."""

    def __init__(self, app: FastAPI) -> None:
        # raise_app_exceptions=False: Starlette re-raises after sending the 500, as a
        # server would log it; the test looks at what the client received.
        self.transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://test") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@pytest.fixture
def client() -> Client:
    return Client(make_app(max_bytes=1000))


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == type_
    assert body["status"] == status
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    return body


@pytest.mark.parametrize("code", ["doc.exists", "auth.stale", "mempool.full", "store.corrupt", "doc.schema"])
def test_ledger_error_becomes_a_problem(client: Client, code: str) -> None:
    response = client.get(f"/raise/{code}")
    body = assert_problem(response, status_for(BY_CODE[code]), code)
    assert body["instance"] == f"/raise/{code}"
    assert body["detail"] == "expected something, got another thing"


def test_validation_error_is_request_malformed(client: Client) -> None:
    body = assert_problem(client.get("/items/not-a-number"), 400, "request.malformed")
    assert "number" in body["detail"]
    assert "not-a-number" not in body["detail"]  # the input is not echoed back


def test_unknown_route_is_request_not_found(client: Client) -> None:
    assert_problem(client.get("/no/such/route"), 404, "request.not_found")


def test_wrong_method_is_request_malformed_with_allow(client: Client) -> None:
    response = client.delete("/boom")
    assert_problem(response, 405, "request.malformed")
    assert "GET" in response.headers["allow"]


def test_unexpected_exception_says_nothing_but_internal_error(client: Client) -> None:
    response = client.get("/boom")
    body = assert_problem(response, 500, INTERNAL_TYPE)
    assert body["detail"] == "internal error"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert "Traceback" not in response.text


# --- body size limit ----------------------------------------------------------------


def test_body_within_the_limit_passes(client: Client) -> None:
    assert client.post("/raw", content=b"x" * 1000).json() == {"size": 1000}


def test_declared_length_over_the_limit_is_refused(client: Client) -> None:
    response = client.post("/raw", content=b"x" * 1001)
    assert_problem(response, 413, "request.too_large")


def test_chunked_body_over_the_limit_is_refused(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    response = client.post("/raw", content=chunks())
    assert_problem(response, 413, "request.too_large")


def test_chunked_json_over_the_limit_is_413_not_fastapis_400(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a": "' + b"z" * 2000 + b'"}'

    assert_problem(client.post("/json", content=chunks()), 413, "request.too_large")


def test_bad_content_length_is_request_malformed() -> None:
    scope = {"type": "http", "method": "POST", "path": "/raw", "headers": [(b"content-length", b"12x")]}
    sent = run_middleware(scope, [b"abc"])
    assert sent[0]["status"] == 400


def run_middleware(scope: dict[str, Any], chunks: list[bytes], max_bytes: int = 10) -> list[dict[str, Any]]:
    """Drive BodyLimitMiddleware by hand with a body streamed in ``chunks``."""
    app_saw: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            app_saw.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(BodyLimitMiddleware(app, max_bytes)(scope, receive, send))
    return sent


def test_streamed_chunks_are_counted_across_messages() -> None:
    scope = {"type": "http", "method": "POST", "path": "/raw", "headers": []}
    sent = run_middleware(scope, [b"1234", b"5678", b"90ab"])
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [413]  # the app's own 200 is dropped
    ok = run_middleware(scope, [b"1234", b"5678", b"90"])
    assert [m["status"] for m in ok if m["type"] == "http.response.start"] == [200]
