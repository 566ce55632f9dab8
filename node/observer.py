"""The observer: a non-voting node that follows the chain and serves the read API.

An observer holds no validator key and takes no part in consensus. It follows the
validators named in its config (:mod:`node.follow`), verifying every commit
certificate and re-executing every block through the ledger code the validators run,
into its own LevelDB (a restart resumes from the stored head). The API app
(:func:`api.app.create_app`) serves from it what it serves from a validator, from the
same routes: status, headers, validators, verify, proofs, checkpoint, consistency,
evidence, the verifier page, health, metrics and the member endpoints (addressed to
its ``node_id``). It refuses writes: ``POST /v1/transactions`` gets 503
``node.read_only`` naming the validators to submit to
(``docs/decisions/0016-observer-nodes.md``).

:class:`ObserverNode` offers the attributes those routes read of a node, with the same
meanings: ``chain``, ``genesis``, ``config``, ``zone_id``, ``metrics``, ``mempool``
(always empty), ``last_signed``, ``state.round``, ``peers.stats()`` (the followed
validators), ``evidence_log``, ``status()``, ``tx_result()``, ``require_ready()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from ledger.blocks import CommitCertificate
from ledger.chain import Chain
from ledger.errors import LedgerError, NodeReadOnlyError
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.store import LevelDBStore
from ledger.transition import ExecutedBlock
from node.config import ObserverConfig
from node.evidence import EvidenceLog
from node.finality import STATUS_COMMITTED, TxResult
from node.follow import REQUEST_TIMEOUT_S, Follower, MemberRequester, Source
from node.runtime import Metrics
from node.status import compute_status

log = logging.getLogger("zoneledger.observer")


@dataclass(frozen=True, slots=True)
class ObservedRound:
    """What the metrics read as the consensus round: the head block's round."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class SourceStats:
    """One followed validator's link, in the shape status and metrics read of a peer."""

    up: bool
    consecutive_failures: int


class FollowedValidators:
    """``peers.stats()`` of an observer: its followed validators, by position in ``follow``."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources

    def stats(self) -> dict[int, SourceStats]:
        return {s.index: SourceStats(s.up, s.consecutive_failures) for s in self.sources}


class EmptyMempool:
    """An observer pends nothing: it takes no transactions."""

    def __len__(self) -> int:
        return 0


def compute_follow_offset(node_id: str, sources: int) -> int:
    """Where in the follow list this observer starts asking (observers spread out)."""
    return zlib.crc32(node_id.encode()) % max(1, sources)


def is_genesis_member(genesis: Genesis, key: bytes) -> bool:
    """An auditor, or an officer listed in genesis (a later officer is a member too)."""
    return key in genesis.auditors or any(key in zone.officers for zone in genesis.zones)


class ObserverNode:
    """One observer process: the follower task and what the API reads."""

    role = "observer"

    def __init__(self, config: ObserverConfig) -> None:
        self.config = config
        self.genesis = Genesis.load(config.genesis)
        self.key = SigningKey.load(config.member_key, config.passphrase())
        if self.key.public in self.genesis.validators:
            log.warning("member_key is a validator key; an observer should follow with an auditor's or officer's key")
        elif not is_genesis_member(self.genesis, self.key.public):
            log.warning("member_key %s is not an auditor or officer in genesis: the validators refuse it "
                        "unless it was registered since", self.key.public.hex())
        self.zone_id = config.node_id
        """The name member requests to this observer are addressed to (``X-ZL-Node``)."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = LevelDBStore(config.data_dir / "ledger")
        self.chain = Chain(self.store, self.genesis)
        self.mempool = EmptyMempool()
        self.metrics = Metrics()
        self.last_signed: dict[int, int] = {}
        self.evidence_log = EvidenceLog(config.data_dir / "evidence")
        self.sources = [Source(i, url) for i, url in enumerate(config.follow)]
        self.peers = FollowedValidators(self.sources)
        self.client: httpx.AsyncClient | None = None
        self.follower: Follower | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> ObservedRound:
        header = self.chain.head_header
        return ObservedRound(self.chain.height, header.round if header else 0)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """Start following (``transport``: where tests put the validators in process)."""
        tls = self.config.tls
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(tls.ca)) if tls else True
        self.client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, verify=verify, trust_env=False, transport=transport)
        requester = MemberRequester(self.sources, self.key, self.client)
        self.follower = Follower(
            self.chain, self.sources, requester, on_applied=self._after_commit,
            offset=compute_follow_offset(self.config.node_id, len(self.sources)),
        )
        self._task = asyncio.create_task(self.follower.run(), name="follow")
        log.info("observer %s started at height %d, following %s", self.zone_id, self.chain.height,
                 ", ".join(self.config.follow))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client is not None:
            await self.client.aclose()
        self.evidence_log.close()
        self.store.close()

    def _after_commit(self, executed: ExecutedBlock, commit: CommitCertificate) -> None:
        height = executed.block.height
        self.metrics.commits += 1
        self.metrics.synced_blocks += 1
        self.metrics.txs_committed += len(executed.tx_hashes)
        self.metrics.last_commit_time = time.monotonic()
        for signature in commit.signatures:
            self.last_signed[signature.validator] = max(self.last_signed.get(signature.validator, 0), height)
        log.info("followed height %d: %d txs, log size %d", height, len(executed.tx_hashes), executed.log_size)

    # --- what the API reads ---------------------------------------------------------

    def require_ready(self) -> None:
        """Every write is refused here: an observer takes no transactions."""
        raise NodeReadOnlyError(
            f"expected a validator: this node is observer {self.zone_id!r} and takes no transactions; "
            f"submit to a validator: {', '.join(self.config.follow)}"
        )

    async def submit(self, entries: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes | None, LedgerError | None]]:
        self.require_ready()
        return []

    def tx_result(self, tx_hash: bytes) -> TxResult | None:
        """A committed transaction's place; an observer knows nothing pending."""
        location = self.chain.get_tx_location(tx_hash)
        if location is None:
            return None
        header = self.chain.get_header(location.height)
        return TxResult(
            tx_hash, STATUS_COMMITTED, location.height, location.log_index, header.block_hash if header else None
        )

    async def wait_final(self, tx_hashes: list[bytes], timeout_s: float) -> list[TxResult]:
        self.require_ready()
        return []

    def status(self) -> dict[str, Any]:
        header = self.chain.head_header
        status = compute_status(
            self.chain, self.genesis, round_=header.round if header else 0, consensus_height=None, mempool_size=0,
            node={"role": self.role, "validator_index": None, "zone_id": self.zone_id,
                  "submit_to": list(self.config.follow)},
            peers={str(s.index): {"up": s.up, "consecutive_failures": s.consecutive_failures} for s in self.sources},
        )
        status["following"] = [s.to_json() for s in self.sources]
        return status


def load_observer(config: ObserverConfig) -> ObserverNode:
    return ObserverNode(config)
