"""Member request signing: the payload, the headers, and every refusal by its class."""

from __future__ import annotations

import pytest

from ledger import errors
from ledger.encoding import H, cb
from ledger.keys import REQUEST_DOMAIN, TX_DOMAIN, SigningKey
from ledger.requests import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    sign_request,
    verify_request,
)

KEY = SigningKey.from_label("requests test officer")
NOW = 1_790_000_000_000
PATH = "/v1/documents/EG-TEDA/CO-1"


def test_signed_request_verifies_and_names_its_key() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW)
    assert set(headers) == {HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE}
    assert headers[HEADER_KEY] == KEY.public.hex()
    assert headers[HEADER_TIMESTAMP] == str(NOW)
    assert verify_request(headers, "GET", PATH, "", b"", NOW) == KEY.public


def test_signature_covers_the_documented_payload() -> None:
    headers = sign_request(KEY, "get", PATH, "a=1", b"body", NOW)
    payload = {
        "method": "GET", "path": PATH, "query": "a=1", "timestamp_ms": NOW,
        "body_sha256": H(b"body"), "key": KEY.public,
    }
    assert bytes.fromhex(headers[HEADER_SIGNATURE]) == KEY.sign_bytes(REQUEST_DOMAIN + cb(payload))


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in sign_request(KEY, "GET", PATH, "", b"", NOW).items()}
    assert verify_request(headers, "GET", PATH, "", b"", NOW) == KEY.public


@pytest.mark.parametrize("dropped", [HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE])
def test_missing_header_is_auth_missing(dropped: str) -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW)
    del headers[dropped]
    with pytest.raises(errors.AuthMissingError, match=dropped):
        verify_request(headers, "GET", PATH, "", b"", NOW)


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("POST", PATH, "", b""),
        ("GET", "/v1/documents/EG-TEDA/CO-2", "", b""),
        ("GET", PATH, "x=1", b""),
        ("GET", PATH, "", b"extra"),
    ],
)
def test_any_changed_part_breaks_the_signature(method: str, path: str, query: str, body: bytes) -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW)
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, method, path, query, body, NOW)


def test_another_key_cannot_claim_the_signature() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW)
    headers[HEADER_KEY] = SigningKey.from_label("someone else").public.hex()
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, "GET", PATH, "", b"", NOW)


def test_a_transaction_domain_signature_is_not_a_request_signature() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW)
    payload = {
        "method": "GET", "path": PATH, "query": "", "timestamp_ms": NOW, "body_sha256": H(b""), "key": KEY.public,
    }
    headers[HEADER_SIGNATURE] = KEY.sign(TX_DOMAIN, payload).hex()
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, "GET", PATH, "", b"", NOW)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_KEY, "zz" * 32),
        (HEADER_KEY, "ab" * 31),
        (HEADER_SIGNATURE, "00" * 63),
        (HEADER_SIGNATURE, "not hex"),
        (HEADER_TIMESTAMP, "-5"),
        (HEADER_TIMESTAMP, "1e12"),
        (HEADER_TIMESTAMP, "١٢٣"),  # Arabic-Indic digits: isdigit() but not ASCII
    ],
)
def test_malformed_headers_are_signature_errors(header: str, value: str) -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW)
    headers[header] = value
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, "GET", PATH, "", b"", NOW)


@pytest.mark.parametrize("offset_ms", [-120_000, 120_000, 60_001])
def test_timestamp_outside_the_window_is_stale(offset_ms: int) -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW + offset_ms)
    with pytest.raises(errors.AuthStaleError):
        verify_request(headers, "GET", PATH, "", b"", NOW)


def test_timestamp_at_the_window_edge_is_accepted() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW - 60_000)
    assert verify_request(headers, "GET", PATH, "", b"", NOW) == KEY.public
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW - 5_000)
    with pytest.raises(errors.AuthStaleError):
        verify_request(headers, "GET", PATH, "", b"", NOW, window_ms=1_000)
