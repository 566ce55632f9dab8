"""How an observer gets blocks: signed member requests to the validators it follows.

An observer (:mod:`node.observer`) holds no validator key, so it cannot use the peer
transport; blocks carry document contents, which are members-only, so it asks as a
member: ``GET /v1/blocks?from=&count=`` signed with its member key (an auditor's or an
officer's, ``ledger.requests``), answered with up to ``SYNC_BATCH`` blocks and their
commit certificates as ``cb([{"block", "commit"}])``, the same reply a validator's
``get_blocks`` peer request gets. A followed validator's head comes from its public
``GET /healthz``.

:class:`MemberRequester` puts that behind the interface :class:`node.sync.BlockSync`
uses, so an observer applies blocks with the validators' own catch-up code: each
certificate checked against the validator set (``commit_block`` runs
``validate_commit``) and each block re-executed against the local state
(``execute_block``), nothing taken on the word of the validator that sent it.

:class:`Follower` decides whom to ask. A source that cannot be reached, answers with
an error, or claims a height it then does not deliver in verified blocks (it lied, or
sent a block or certificate that failed) counts a failure and is skipped for a backoff
that doubles up to ``BACKOFF_CAP_S``; the next source in line is asked. Each round
asks the first ``FANOUT`` sources in line (the ones without failures first, starting
at an offset of the observer's own so that observers spread over the validators), and
every ``SWEEP_EVERY`` rounds all of them, so a source that withholds blocks by
reporting an old head cannot hold the observer back for long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ledger.blocks import CommitCertificate
from ledger.chain import Chain
from ledger.encoding import cb, decode_cb, expect_int, expect_map
from ledger.errors import PeerMalformedError, PeerUnavailableError
from ledger.keys import SigningKey
from ledger.limits import SYNC_BATCH
from ledger.requests import sign_request
from ledger.transition import ExecutedBlock
from node.sync import BlockSync, PeerRequester

log = logging.getLogger("zoneledger.follow")

FOLLOW_TICK_MS = 250
"""Pause between follow rounds once caught up (an observer lags the chain by about this)."""
FANOUT = 2
"""Sources asked for their head in an ordinary round."""
SWEEP_EVERY = 8
"""Every this many rounds, every source is asked (about every 2 s)."""
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 8.0
REQUEST_TIMEOUT_S = 10.0
"""A followed validator's answer: a batch of blocks can run to tens of megabytes."""
BLOCKS_PATH = "/v1/blocks"
MSGPACK = "application/msgpack"


@dataclass(slots=True)
class Source:
    """One followed validator, as the observer judges it."""

    index: int
    """Position in the configured ``follow`` list."""
    url: str
    node_id: str | None = None
    """The zone id its member requests are addressed to (``GET /v1/status``), once known."""
    head: int = 0
    """The height it last claimed."""
    up: bool = False
    """Whether the last round with it went well."""
    consecutive_failures: int = 0
    failures: int = 0
    """Unreachable, errors, and heads claimed but not delivered, since start."""
    blocks: int = 0
    """Blocks it sent that passed every check and were committed here."""
    retry_at: float = 0.0
    """Monotonic time before which it is not asked again."""

    def on_failure(self, now: float) -> None:
        self.up = False
        self.failures += 1
        self.consecutive_failures += 1
        self.retry_at = now + compute_backoff_s(self.consecutive_failures)

    def on_success(self) -> None:
        self.up = True
        self.consecutive_failures = 0
        self.retry_at = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url, "zone_id": self.node_id, "head": self.head, "up": self.up,
            "consecutive_failures": self.consecutive_failures, "failures": self.failures, "blocks": self.blocks,
        }


def compute_backoff_s(consecutive_failures: int) -> float:
    """How long a source rests after ``consecutive_failures`` (>= 1) failures in a row."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(consecutive_failures - 1, 16)))


def compute_order(sources: Sequence[Source], now: float, offset: int, limit: int | None) -> list[int]:
    """Sources to ask this round, best first: those resting are left out; fewer failures
    in a row first, then the configured order rotated by ``offset``; at most ``limit``."""
    n = len(sources)
    ready = [s for s in sources if s.retry_at <= now]
    ready.sort(key=lambda s: (s.consecutive_failures, (s.index - offset) % n))
    chosen = [s.index for s in ready]
    return chosen if limit is None else chosen[:limit]


class MemberRequester:
    """``status`` and ``get_blocks`` of :class:`node.sync.PeerRequester`, over the public
    ``/healthz`` and the signed member ``GET /v1/blocks`` of the followed validators."""

    def __init__(
        self, sources: Sequence[Source], key: SigningKey, client: httpx.AsyncClient,
        *, clock: Callable[[], float] = time.time,
    ) -> None:
        self.sources = sources
        self.key = key
        self.client = client
        self.clock = clock
        self._last_ms = 0

    async def request(self, index: int, kind: str, body: bytes) -> bytes:
        source = self.sources[index]
        try:
            if kind == "status":
                return cb({"height": await self._head(source)})
            if kind == "get_blocks":
                m = expect_map(decode_cb(body), "get_blocks", frozenset({"from", "count"}))
                return await self._blocks(source, expect_int(m["from"], "from", 1), expect_int(m["count"], "count", 1))
        except httpx.HTTPError as exc:
            raise PeerUnavailableError(f"{source.url}: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a JSON body that does not parse
            raise PeerMalformedError(f"{source.url}: unreadable answer ({exc})") from exc
        raise PeerMalformedError(f"expected a status or get_blocks request, got {kind!r}")

    async def _head(self, source: Source) -> int:
        response = await self.client.get(f"{source.url}/healthz")
        if response.status_code != 200:
            raise PeerUnavailableError(f"{source.url}/healthz answered {response.status_code}")
        height = response.json().get("height")
        if type(height) is not int or height < 0:
            raise PeerMalformedError(f"{source.url}/healthz: expected a height, got {height!r}")
        return height

    async def _node_id(self, source: Source) -> str:
        if source.node_id is None:
            response = await self.client.get(f"{source.url}/v1/status")
            if response.status_code != 200:
                raise PeerUnavailableError(f"{source.url}/v1/status answered {response.status_code}")
            node = response.json().get("node")
            zone_id = node.get("zone_id") if isinstance(node, dict) else None
            if not isinstance(zone_id, str) or not zone_id:
                raise PeerMalformedError(f"{source.url}/v1/status: expected node.zone_id, got {zone_id!r}")
            source.node_id = zone_id
        return source.node_id

    def _timestamp_ms(self) -> int:
        # Strictly increasing, so no two requests sign the same bytes (a node refuses a
        # signature it has seen as a replay).
        self._last_ms = max(int(self.clock() * 1000), self._last_ms + 1)
        return self._last_ms

    async def _blocks(self, source: Source, start: int, count: int) -> bytes:
        node_id = await self._node_id(source)
        query = f"from={start}&count={min(count, SYNC_BATCH)}"
        headers = sign_request(self.key, "GET", BLOCKS_PATH, query, b"", self._timestamp_ms(), node=node_id)
        response = await self.client.get(f"{source.url}{BLOCKS_PATH}?{query}", headers={**headers, "accept": MSGPACK})
        if response.status_code != 200:
            problem = _problem_type(response)
            if problem == "auth.wrong_node":
                source.node_id = None  # its zone id is asked again next time
            raise PeerUnavailableError(f"{source.url}{BLOCKS_PATH} answered {response.status_code} {problem}")
        return response.content


def _problem_type(response: httpx.Response) -> str:
    try:
        value = response.json()
    except ValueError:
        return "(no problem type)"
    return str(value.get("type")) if isinstance(value, dict) else "(no problem type)"


class Follower:
    """Keeps ``chain`` up with the followed validators, checking everything they send."""

    def __init__(
        self,
        chain: Chain,
        sources: Sequence[Source],
        requester: PeerRequester,
        *,
        on_applied: Callable[[ExecutedBlock, CommitCertificate], None],
        offset: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chain = chain
        self.sources = sources
        self.requester = requester
        self.on_applied = on_applied
        self.offset = offset % max(1, len(sources))
        self.clock = clock
        self.rounds = 0
        self._claimed: dict[int, int] = {}
        self._fetching: tuple[int, int] | None = None
        """(source, chain height) of the last ``get_blocks`` asked, until judged."""
        self._fruitless: set[int] = set()
        """Sources asked for blocks this round whose batch committed nothing."""
        self.sync = BlockSync(chain, verified=frozenset, on_applied=self._applied, on_peer_head=self._claim)

    async def request(self, index: int, kind: str, body: bytes) -> bytes:
        """The requester as :class:`BlockSync` sees it: each batch is judged by what it
        committed once the next request (or the round's end) comes."""
        self._settle()
        if kind == "get_blocks":
            self._fetching = (index, self.chain.height)
        return await self.requester.request(index, kind, body)

    def _settle(self) -> None:
        if self._fetching is not None:
            index, height = self._fetching
            if self.chain.height == height:
                self._fruitless.add(index)
            self._fetching = None

    def _claim(self, index: int, height: int) -> None:
        self._claimed[index] = height
        self.sources[index].head = height

    def _applied(self, executed: ExecutedBlock, commit: CommitCertificate) -> None:
        if self._fetching is not None:
            self.sources[self._fetching[0]].blocks += 1
        self.on_applied(executed, commit)

    async def follow_once(self) -> int:
        """One round: ask the sources in line for their heads, fetch and verify what they
        have beyond ours, and judge each one; return how many blocks were committed."""
        now = self.clock()
        sweep = self.rounds % SWEEP_EVERY == 0
        self.rounds += 1
        order = compute_order(self.sources, now, self.offset, None if sweep else FANOUT)
        if not order:
            return 0
        self._claimed, self._fruitless = {}, set()
        applied = await self.sync.sync_once(self, order)
        self._settle()
        self.judge(order, now)
        return applied

    def judge(self, order: Sequence[int], now: float) -> None:
        """A source failed this round when its head could not be read, when a batch it
        was asked for committed nothing (unreachable, refused, or a block or certificate
        that failed a check), or when it claimed a height the chain has not reached."""
        for index in order:
            source = self.sources[index]
            claimed = self._claimed.get(index)
            if claimed is None or claimed > self.chain.height or index in self._fruitless:
                if claimed is not None:
                    log.warning(
                        "validator at %s claimed height %d and did not deliver verified blocks (chain at %d)",
                        source.url, claimed, self.chain.height,
                    )
                source.on_failure(now)
            else:
                source.on_success()

    async def run(self, tick_ms: int = FOLLOW_TICK_MS) -> None:
        """Follow forever: rounds back to back while blocks arrive, else one per tick."""
        while True:
            try:
                applied = await self.follow_once()
            except Exception:  # noqa: BLE001 - sync catches each source's faults; this is a bug or the disk
                log.exception("follow round failed")
                applied = 0
            if not applied:
                await asyncio.sleep(tick_ms / 1000)
