"""Member request signing: how an officer or auditor signs an HTTP request (DESIGN §3, §11).

A member request (``GET /v1/documents/{doc_id}``, ``GET /v1/blocks/{height}``) carries
four headers::

    X-ZL-Key         lowercase hex of the member's 32-byte Ed25519 public key
    X-ZL-Node        zone id of the node the request is addressed to (``node.zone_id``
                     in ``GET /v1/status``)
    X-ZL-Timestamp   Unix time in milliseconds, decimal
    X-ZL-Signature   lowercase hex of the 64-byte signature

The signature covers ``REQUEST_DOMAIN || cb(payload)`` with::

    {"method": "GET", "path": "/v1/documents/EG-TEDA/CO-1", "query": "<raw query or ''>",
     "timestamp_ms": int, "body_sha256": H(body bytes), "key": public key bytes,
     "node": "EG-TEDA"}

``path`` is the percent-decoded path the server routes (the ASGI scope's ``path``),
so a client signs the path before it percent-encodes it for the URL;
``query`` is the raw query string exactly as sent, without the ``?``. Binding the key
into the payload means a signature cannot be re-attributed to another key. Binding the
addressed node means a request cannot be replayed at another node: each node remembers
only the signatures it accepted itself, so without ``node`` one captured request would
be accepted once by every node (``docs/decisions/0010-request-addressed-node.md``).

This module is pure: it owns the signing payload and the header checks
(missing, malformed, addressed to another node, wrong signature, timestamp outside the
window). Remembering
signatures to refuse a replay within the window needs state, and lives in
:mod:`api.auth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.encoding import H, bounded_repr
from ledger.errors import AuthMissingError, AuthSignatureError, AuthStaleError, AuthWrongNodeError
from ledger.keys import (
    PUBLIC_KEY_SIZE,
    REQUEST_DOMAIN,
    SIGNATURE_SIZE,
    SigningKey,
    signing_bytes,
    verify_bytes,
)

HEADER_KEY = "X-ZL-Key"
HEADER_NODE = "X-ZL-Node"
HEADER_TIMESTAMP = "X-ZL-Timestamp"
HEADER_SIGNATURE = "X-ZL-Signature"
REQUEST_HEADERS = (HEADER_KEY, HEADER_NODE, HEADER_TIMESTAMP, HEADER_SIGNATURE)

DEFAULT_WINDOW_MS = 60_000
"""A request is accepted while its timestamp is within this distance of the server's clock."""

_MAX_TIMESTAMP_DIGITS = 16  # Unix ms fits in 13 digits until the year 2286


def compute_request_payload(
    public: bytes, method: str, path: str, query: str, body: bytes, timestamp_ms: int, node: str
) -> dict[str, Any]:
    """The map a member request signature covers (encoded with ``cb`` inside signing)."""
    return {
        "method": method.upper(),
        "path": path,
        "query": query,
        "timestamp_ms": timestamp_ms,
        "body_sha256": H(body),
        "key": public,
        "node": node,
    }


def sign_request(
    key: SigningKey, method: str, path: str, query: str, body: bytes, now_ms: int, *, node: str
) -> dict[str, str]:
    """The four ``X-ZL-*`` headers that make this request a signed member request to ``node``
    (the zone id the node reports as ``node.zone_id`` in ``GET /v1/status``)."""
    payload = compute_request_payload(key.public, method, path, query, body, now_ms, node)
    signature = key.sign(REQUEST_DOMAIN, payload)
    return {
        HEADER_KEY: key.public.hex(),
        HEADER_NODE: node,
        HEADER_TIMESTAMP: str(now_ms),
        HEADER_SIGNATURE: signature.hex(),
    }


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    # HTTP header names are case-insensitive; Starlette's Headers already are, a plain
    # dict (tests, other callers) may not be.
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, item in headers.items():
        if key.lower() == lowered:
            return item
    return None


def _parse_hex(text: str, size: int, what: str) -> bytes:
    if len(text) != 2 * size:
        raise AuthSignatureError(f"{what}: expected {2 * size} hex characters, got {len(text)}")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise AuthSignatureError(f"{what}: expected hex, got other characters") from exc


def _parse_timestamp(text: str) -> int:
    # str.isdigit accepts non-ASCII digits; the header must be plain ASCII decimal.
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise AuthSignatureError(f"{HEADER_TIMESTAMP}: expected Unix milliseconds, got {text[:32]!r}")
    return int(text)


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    query: str,
    body: bytes,
    now_ms: int,
    *,
    node: str,
    window_ms: int = DEFAULT_WINDOW_MS,
) -> bytes:
    """Check a signed member request addressed to ``node`` and return the signer's public key.

    Raises :class:`AuthMissingError` when any of the four headers is absent,
    :class:`AuthWrongNodeError` when the request is addressed to another node,
    :class:`AuthSignatureError` when a header is malformed or the signature does not
    cover this request, and :class:`AuthStaleError` when the timestamp is more than
    ``window_ms`` from ``now_ms`` (in the past or the future). The signature is checked
    before the time, so "stale" always describes a genuinely signed request.
    """
    values = {name: _get_header(headers, name) for name in REQUEST_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise AuthMissingError(f"expected a signed member request, missing {', '.join(missing)}")
    key_text, node_text, timestamp_text, signature_text = (str(values[name]) for name in REQUEST_HEADERS)
    if node_text != node:
        # Named before the signature is checked: the client learns at once where it went wrong.
        raise AuthWrongNodeError(f"{HEADER_NODE}: expected this node, {node!r}, got {bounded_repr(node_text)}")
    public = _parse_hex(key_text, PUBLIC_KEY_SIZE, HEADER_KEY)
    signature = _parse_hex(signature_text, SIGNATURE_SIZE, HEADER_SIGNATURE)
    timestamp_ms = _parse_timestamp(timestamp_text)
    payload = compute_request_payload(public, method, path, query, body, timestamp_ms, node)
    verify_bytes(public, signing_bytes(REQUEST_DOMAIN, payload), signature, AuthSignatureError, "request signature")
    skew = now_ms - timestamp_ms
    if abs(skew) > window_ms:
        direction = "old" if skew > 0 else "in the future"
        raise AuthStaleError(
            f"expected a timestamp within {window_ms} ms of the node's clock, got one {abs(skew)} ms {direction}"
        )
    return public
