"""Member request signing: the payload, the headers, and every refusal by its class."""

from __future__ import annotations

import pytest

from ledger import errors
from ledger.encoding import H, cb
from ledger.keys import REQUEST_DOMAIN, TX_DOMAIN, SigningKey
from ledger.requests import (
    HEADER_KEY,
    HEADER_NODE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    sign_request,
    verify_request,
)

KEY = SigningKey.from_label("requests test officer")
NOW = 1_790_000_000_000
PATH = "/v1/documents/EG-TEDA/CO-1"
NODE = "EG-TEDA"


def test_signed_request_verifies_and_names_its_key() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node=NODE)
    assert set(headers) == {HEADER_KEY, HEADER_NODE, HEADER_TIMESTAMP, HEADER_SIGNATURE}
    assert headers[HEADER_NODE] == NODE
    assert headers[HEADER_KEY] == KEY.public.hex()
    assert headers[HEADER_TIMESTAMP] == str(NOW)
    assert verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE) == KEY.public


def test_signature_covers_the_documented_payload() -> None:
    headers = sign_request(KEY, "get", PATH, "a=1", b"body", NOW, node=NODE)
    payload = {
        "method": "GET", "path": PATH, "query": "a=1", "timestamp_ms": NOW,
        "body_sha256": H(b"body"), "key": KEY.public, "node": NODE,
    }
    assert bytes.fromhex(headers[HEADER_SIGNATURE]) == KEY.sign_bytes(REQUEST_DOMAIN + cb(payload))


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in sign_request(KEY, "GET", PATH, "", b"", NOW, node=NODE).items()}
    assert verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE) == KEY.public


@pytest.mark.parametrize("dropped", [HEADER_KEY, HEADER_NODE, HEADER_TIMESTAMP, HEADER_SIGNATURE])
def test_missing_header_is_auth_missing(dropped: str) -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node=NODE)
    del headers[dropped]
    with pytest.raises(errors.AuthMissingError, match=dropped):
        verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE)


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
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node=NODE)
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, method, path, query, body, NOW, node=NODE)


def test_another_key_cannot_claim_the_signature() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node=NODE)
    headers[HEADER_KEY] = SigningKey.from_label("someone else").public.hex()
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE)


def test_a_transaction_domain_signature_is_not_a_request_signature() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node=NODE)
    payload = {
        "method": "GET", "path": PATH, "query": "", "timestamp_ms": NOW, "body_sha256": H(b""), "key": KEY.public, "node": NODE,
    }
    headers[HEADER_SIGNATURE] = KEY.sign(TX_DOMAIN, payload).hex()
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE)


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
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node=NODE)
    headers[header] = value
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE)


@pytest.mark.parametrize("offset_ms", [-120_000, 120_000, 60_001])
def test_timestamp_outside_the_window_is_stale(offset_ms: int) -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW + offset_ms, node=NODE)
    with pytest.raises(errors.AuthStaleError):
        verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE)


def test_timestamp_at_the_window_edge_is_accepted() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW - 60_000, node=NODE)
    assert verify_request(headers, "GET", PATH, "", b"", NOW, node=NODE) == KEY.public
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW - 5_000, node=NODE)
    with pytest.raises(errors.AuthStaleError):
        verify_request(headers, "GET", PATH, "", b"", NOW, window_ms=1_000, node=NODE)


def test_request_signed_for_one_node_is_refused_by_another() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node="EG-TEDA")
    with pytest.raises(errors.AuthWrongNodeError, match="expected this node, 'DJ-DIFTZ', got 'EG-TEDA'") as caught:
        verify_request(headers, "GET", PATH, "", b"", NOW, node="DJ-DIFTZ")
    assert caught.value.code == "auth.wrong_node"


def test_readdressing_a_request_breaks_its_signature() -> None:
    headers = sign_request(KEY, "GET", PATH, "", b"", NOW, node="EG-TEDA")
    headers[HEADER_NODE] = "DJ-DIFTZ"
    with pytest.raises(errors.AuthSignatureError):
        verify_request(headers, "GET", PATH, "", b"", NOW, node="DJ-DIFTZ")
