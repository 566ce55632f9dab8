"""Member authentication: a FastAPI dependency that admits officers and auditors only.

:func:`ledger.requests.verify_request` checks the signature and the time window; this
module adds what needs state and the ledger's view of who is a member:

* the request must be addressed to this node (``node_id``, its zone id; else
  ``auth.wrong_node``), so a request captured at one node is useless at another;
* the key must be an officer or an auditor (``is_member``; else ``auth.not_member``);
* a signed request is accepted once: its ``(key, signature)`` is remembered until its
  timestamp leaves the window (after which ``auth.stale`` refuses it anyway), so a
  replay within the window is ``auth.replayed``.

The memory is bounded: expired entries are evicted on every call, and when
``max_entries`` unexpired entries are held the next request is refused with
``node.unavailable`` (503) rather than forgetting one, because forgetting would let
that request be replayed. The memory is per process: run one API process per node,
or put the replay check where the processes share state.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

from fastapi import Request

from ledger.errors import AuthNotMemberError, AuthReplayError, NodeUnavailableError
from ledger.limits import MAX_REMEMBERED_REQUESTS
from ledger.requests import DEFAULT_WINDOW_MS, HEADER_SIGNATURE, HEADER_TIMESTAMP, verify_request

DEFAULT_MAX_ENTRIES = MAX_REMEMBERED_REQUESTS


class ReplayGuard:
    """Remembers accepted request signatures until their timestamps expire."""

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.window_ms = window_ms
        self.max_entries = max_entries
        self._seen: set[tuple[bytes, str]] = set()
        self._expiry: list[tuple[int, bytes, str]] = []  # min-heap by expiry time

    def __len__(self) -> int:
        return len(self._seen)

    def evict_expired(self, now_ms: int) -> None:
        while self._expiry and self._expiry[0][0] < now_ms:
            _, key, signature = heapq.heappop(self._expiry)
            self._seen.discard((key, signature))

    def admit(self, key: bytes, signature: str, timestamp_ms: int, now_ms: int) -> None:
        """Remember ``(key, signature)``, or raise if it was seen within the window."""
        self.evict_expired(now_ms)
        # Signatures are compared as lowercase hex: Ed25519 signatures are not
        # malleable in the library we use, but hex case is, so normalise it.
        entry = (key, signature.lower())
        if entry in self._seen:
            raise AuthReplayError("expected a fresh request, got one already accepted within the window")
        if len(self._seen) >= self.max_entries:
            raise NodeUnavailableError("expected room to remember another signed request, got a full replay cache")
        self._seen.add(entry)
        # Kept one window past the timestamp: later than that, the time check refuses it.
        heapq.heappush(self._expiry, (timestamp_ms + self.window_ms, key, entry[1]))


class MemberAuth:
    """``Depends(MemberAuth(is_member))``: returns the verified member's public key."""

    def __init__(
        self,
        is_member: Callable[[bytes], bool],
        *,
        node_id: str,
        window_ms: int = DEFAULT_WINDOW_MS,
        clock: Callable[[], float] = time.time,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.is_member = is_member
        self.node_id = node_id
        self.window_ms = window_ms
        self.clock = clock
        self.replays = ReplayGuard(window_ms, max_entries)

    async def __call__(self, request: Request) -> bytes:
        body = await request.body()
        now_ms = int(self.clock() * 1000)
        # The ASGI scope's path is percent-decoded and complete; ``request.url.path``
        # re-escapes '?' and '#', which a document number may contain.
        path = request.scope["path"]
        query = request.scope.get("query_string", b"").decode("latin-1")
        key = verify_request(
            request.headers, request.method, path, query, body, now_ms, node=self.node_id, window_ms=self.window_ms
        )
        if not self.is_member(key):
            raise AuthNotMemberError(f"expected an officer or auditor key, got {key.hex()}")
        # verify_request has parsed both headers, so they are present and well-formed.
        self.replays.admit(key, request.headers[HEADER_SIGNATURE], int(request.headers[HEADER_TIMESTAMP]), now_ms)
        return key
