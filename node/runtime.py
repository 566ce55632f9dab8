"""The validator runtime: one asyncio process driving the consensus machine for real.

It owns the chain (LevelDB), the mempool, the write-ahead log and the peer network,
and it is the only place where the pure consensus machine meets a clock and a disk:

- every event (peer message, timeout, block built, block checked, head advanced, sync
  over) goes through one queue and one task into the pure driver (:mod:`node.driver`),
  which steps the machine and decides when a height starts, when to sync and how the
  machine is rebuilt; the simulator runs the same driver;
- a message the machine signs is fsynced to the WAL before it is sent; when that write
  fails, the machine is rebuilt from the WAL, so the message is never sent later;
- a decided block is committed through the ledger's single atomic batch;
- a node that is behind fetches blocks with their certificates from peers, checks each
  certificate and re-executes each block (catch-up), reporting each one to the driver
  as it lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ledger.blocks import (
    PRECOMMIT,
    Block,
    CommitCertificate,
    SignedVote,
    compute_max_faulty,
    compute_proposer,
    validate_commit,
)
from ledger.chain import Chain
from ledger.encoding import H, cb, decode_cb, expect_bytes, expect_list, expect_map
from ledger.errors import ConfigError, LedgerError, NodeUnavailableError, PeerMalformedError
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.limits import MAX_SUBMISSION_BATCH
from ledger.store import LevelDBStore
from ledger.transition import (
    ExecutedBlock,
    build_block,
    commit_block,
    compute_verified_envelope,
    execute_block,
    validate_block_time_bound,
)
from node.config import NodeConfig
from node.consensus import (
    NOT_A_MEMBER,
    BlockReady,
    BlockValidity,
    Broadcast,
    ConsensusConfig,
    ConsensusState,
    Decide,
    Event,
    PersistThenSend,
    ProposalReceived,
    ReportEvidence,
    RequestBlock,
    ScheduleTimeout,
    TimeoutFired,
    ValidateBlock,
    VoteReceived,
)
from node.driver import (
    SYNC_TICK_MS,
    ArmHeartbeat,
    Boot,
    Command,
    CommitSeen,
    DecideFailed,
    DriverConfig,
    DriverInput,
    DriverState,
    HeadAdvanced,
    HeartbeatFired,
    PeerAt,
    StartSync,
    SyncFinished,
    SyncTick,
    TxsPending,
    WalWriteFailed,
    compute_commit_recipients,
    drive,
    is_block_worth_keeping,
    is_commit_owed,
    new_driver,
)
from node.evidence import EvidenceLog
from node.finality import STATUS_COMMITTED, STATUS_PENDING, STATUS_REJECTED, FinalityWaiters, TxResult
from node.mempool import Mempool
from node.messages import SignedProposal
from node.offload import ADMISSION_CHUNK, run_off_loop
from node.peers import PeerMessage, PeerNetwork, TlsConfig
from node.status import compute_status
from node.sync import BlockSync, fetch_block, serve_block, serve_blocks, serve_status
from node.verified_precommits import VerifiedPrecommits
from node.wal import WriteAheadLog

log = logging.getLogger("zoneledger.node")



class _ChainAdvanced:
    """Queue marker: the chain's head moved; the consumer reads head and WAL when it
    takes the marker, so the driver sees the records as they are at that moment."""


_CHAIN_ADVANCED = _ChainAdvanced()
QueueItem = Event | DriverInput | _ChainAdvanced


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Metrics:
    """Counters exported at /metrics."""

    commits: int = 0
    txs_committed: int = 0
    txs_rejected: int = 0
    evidence: int = 0
    synced_blocks: int = 0
    rounds_started: int = 0
    last_commit_time: float = field(default_factory=time.monotonic)
    request_latency: dict[str, list[float]] = field(default_factory=dict)


class Node:
    """One validator process."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.genesis = Genesis.load(config.genesis)
        self.key = SigningKey.load(config.validator_key, config.passphrase())
        validators = self.genesis.validators
        if self.key.public not in validators:
            raise ConfigError(f"validator key {self.key.public.hex()} is not in the genesis validator set")
        self.index = validators.index(self.key.public)
        self.zone_id = self.genesis.zones[self.index].zone_id
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = LevelDBStore(config.data_dir / "ledger")
        self.chain = Chain(self.store, self.genesis)
        self.mempool = Mempool(self.chain, max_txs=config.mempool_max_txs, max_bytes=config.mempool_max_bytes)
        self.wal = WriteAheadLog(config.data_dir / "consensus.wal")
        params = self.genesis.consensus
        self.consensus_config = ConsensusConfig(
            chain_id=self.genesis.chain_id,
            validators=validators,
            index=self.index,
            key=self.key,
            timeout_propose_ms=params.timeout_propose_ms,
            timeout_delta_ms=params.timeout_delta_ms,
            rebroadcast_ms=config.rebroadcast_ms,
        )
        self._configs: dict[tuple[tuple[bytes, ...], int, int], ConsensusConfig] = {}
        self.driver: DriverState = new_driver(
            DriverConfig(self.consensus_config, config_for=self.consensus_config_for, heartbeat_ms=config.heartbeat_ms)
        )
        tls = TlsConfig(str(config.tls.ca), str(config.tls.cert), str(config.tls.key)) if config.tls else None
        self.peers = PeerNetwork(
            chain_id=self.genesis.chain_id,
            my_index=self.index,
            key=self.key,
            peers={i: url for i, url in config.peers.items() if i != self.index},
            validators=validators,
            tls=tls,
            on_link_up=self._resend_latest,
        )
        self.events: asyncio.Queue[QueueItem] = asyncio.Queue()
        self.blocks: dict[bytes, Block] = {}
        self.proposed: dict[tuple[int, int], bytes] = {}
        """(height, round) -> the first proposed block's hash: one block per slot is kept."""
        self.executed: dict[bytes, ExecutedBlock] = {}
        self.verified_messages: OrderedDict[bytes, None] = OrderedDict()
        self.verified_precommits = VerifiedPrecommits(self.chain.validators_for, head=self.chain.height)
        self.seen_commits: dict[int, CommitCertificate] = {}
        """height -> the first peer certificate validated for it: its siblings are not checked again."""
        self.commits_owed: set[int] = set()
        """Peers already answered with the head's certificate (emptied as the head advances)."""
        self.last_signed: dict[int, int] = {}
        self.waiters = FinalityWaiters()
        self.metrics = Metrics()
        self.evidence_log = EvidenceLog(config.data_dir / "evidence")
        self._tasks: list[asyncio.Task[Any]] = []
        self.sync = BlockSync(
            self.chain,
            verified=lambda: frozenset(self.mempool.verified),
            on_applied=self._after_commit,
            on_peer_head=lambda index, height: self.events.put_nowait(PeerAt(index, height + 1)),
        )
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------------

    @property
    def state(self) -> ConsensusState:
        """The consensus machine as the driver holds it now."""
        return self.driver.machine

    async def start(self) -> None:
        await self.peers.start()
        self._boot()
        self._tasks.append(asyncio.create_task(self._consume(), name="consensus"))
        self._tasks.append(asyncio.create_task(self._sync_loop(), name="sync"))
        log.info("validator %d (%s) started at height %d", self.index, self.zone_id, self.chain.height)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.peers.close()
        self.wal.close()
        self.evidence_log.close()
        self.store.close()

    def _boot(self) -> None:
        """Hand the driver the head and the WAL records of the height after it (after a
        crash the machine resumes there, never signing anything twice)."""
        head = self.chain.height
        records = self.wal.records_for(head + 1)
        for record in records:
            if record.block is not None:
                self._remember_block(Block.decode(record.block))
        last_commit = self.chain.get_commit(head) if head else None
        self.events.put_nowait(Boot(head, self.chain.time_ms, last_commit, tuple(r.action for r in records)))
        self.events.put_nowait(TxsPending(len(self.mempool)))

    # --- the one consumer of events ------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            item = await self.events.get()
            if isinstance(item, _ChainAdvanced):
                item = self._head_advanced()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("input %s at h%d r%d", type(item).__name__, self.state.height, self.state.round)
            try:
                await self._drive(item)
            except Exception:  # noqa: BLE001 - a bug must not kill the validator silently
                log.exception("consensus input %s failed", type(item).__name__)

    async def _drive(self, item: Event | DriverInput) -> None:
        self.driver, commands = drive(self.driver, item, now_ms())
        await self._execute_all(commands)

    def _head_advanced(self) -> HeadAdvanced:
        head = self.chain.height
        commit = self.chain.get_commit(head)
        assert commit is not None, "a committed head always has its certificate"
        records = tuple(r.action for r in self.wal.records_for(head + 1))
        return HeadAdvanced(head, self.chain.time_ms, commit, records)

    async def _execute_all(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, PersistThenSend) and not self._persist(command):
                # Nothing after the failed write may run: it was computed from a machine
                # that believed the message sent. The driver rebuilds it from the disk.
                records = tuple(r.action for r in self.wal.records_for(self.state.height))
                await self._drive(WalWriteFailed(records))
                return
            await self._execute(command)

    def _persist(self, action: PersistThenSend) -> bool:
        """Write the record (fsync); False, and nothing sent, when the write failed."""
        message = action.message
        block_bytes = None
        if isinstance(message, SignedProposal):
            block = self.blocks.get(message.proposal.block_hash)
            block_bytes = block.encode() if block else None
            height = message.proposal.height
        else:
            height = message.vote.height
        try:
            self.wal.append(height, action, block_bytes)
        except (OSError, LedgerError) as exc:
            log.error("write-ahead log append failed, message not sent, consensus rebuilt from the log: %s", exc)
            return False
        return True

    async def _execute(self, action: Command) -> None:  # noqa: C901 - one branch per command
        if isinstance(action, PersistThenSend):
            message = action.message
            if isinstance(message, SignedVote):
                self.last_signed[self.index] = message.vote.height
            self._send(message)
        elif isinstance(action, ArmHeartbeat):
            asyncio.get_running_loop().call_later(action.delay_ms / 1000, self.events.put_nowait, HeartbeatFired())
        elif isinstance(action, StartSync):
            self._spawn(self._run_sync())
        elif isinstance(action, Broadcast):
            self._send(action.message, action.to)
        elif isinstance(action, ScheduleTimeout):
            event = TimeoutFired(action.kind, action.height, action.round)
            asyncio.get_running_loop().call_later(action.delay_ms / 1000, self.events.put_nowait, event)
        elif isinstance(action, RequestBlock):
            self._build(action)
        elif isinstance(action, ValidateBlock):
            await self._validate(action)
        elif isinstance(action, Decide):
            await self._decide(action)
        elif isinstance(action, ReportEvidence):
            self._record_evidence(action)

    def _send(
        self, message: SignedVote | SignedProposal | CommitCertificate, to: frozenset[int] | None = None
    ) -> None:
        if isinstance(message, SignedVote):
            kind, body = "vote", message.encode()
        elif isinstance(message, SignedProposal):
            block = self.blocks.get(message.proposal.block_hash)
            if block is None:
                log.warning("cannot re-send proposal: block %s unknown", message.proposal.block_hash.hex()[:12])
                return
            kind, body = "proposal", cb({"proposal": message.encode(), "block": block.encode()})
        else:
            kind, body = "commit", message.encode()
        if to is None:
            self.peers.broadcast(kind, body)
            return
        for index in sorted(to - {self.index}):
            self.peers.send(index, kind, body)

    # --- proposing, validating, deciding --------------------------------------------------

    def _resend_latest(self, index: int) -> None:
        """A stream to ``index`` opened (again), and what was queued for it while its link
        was down was dropped: it gets this validator's latest signed proposal, prevote and
        precommit of the current height at once, instead of at the next re-broadcast.
        They come from the write-ahead log, so only what is on disk leaves."""
        latest: dict[str, SignedVote | SignedProposal] = {}
        for record in self.wal.records_for(self.chain.height + 1):
            message = record.action.message
            # Records are in signing order: the last one of each kind is the latest.
            latest["proposal" if isinstance(message, SignedProposal) else message.vote.type] = message
        for message in latest.values():
            self._send(message, frozenset({index}))

    def _remember_block(self, block: Block) -> None:
        self.blocks[block.block_hash] = block

    def _build(self, request: RequestBlock) -> None:
        if request.height != self.chain.height + 1:
            return
        time_ms = max(now_ms(), self.chain.time_ms + 1)
        executed, rejected = build_block(
            self.chain,
            self.mempool.candidates(),
            round_=request.round,
            time_ms=time_ms,
            last_commit=self.state.last_commit,
            verified=frozenset(self.mempool.verified),
            max_txs=min(self.config.max_block_txs, self.chain.consensus.max_block_txs),
        )
        for item in rejected:
            tx_hash = H(item.tx_bytes)
            self.mempool.drop(tx_hash, item.error)
            self._resolve(tx_hash, TxResult(tx_hash, STATUS_REJECTED, error_code=item.error.code, error=str(item.error)))
        block = executed.block
        self._remember_block(block)
        self.executed[block.block_hash] = executed
        self.events.put_nowait(BlockReady(request.height, request.round, block.block_hash))

    async def _validate(self, request: ValidateBlock) -> None:
        valid = False
        block = self.blocks.get(request.block_hash) or await self._fetch_block(request.height, request.block_hash)
        if block is not None and request.height == self.chain.height + 1:
            try:
                if block.block_hash not in self.executed:
                    validate_block_time_bound(block.header, now_ms(), self.chain.consensus.max_clock_skew_ms)
                    self.executed[block.block_hash] = execute_block(
                        self.chain, block, verified=frozenset(self.mempool.verified),
                        verified_precommits=self.verified_precommits.digests,
                    )
                valid = True
            except LedgerError as exc:
                log.warning("block %s at height %d is invalid: %s", block.block_hash.hex()[:12], request.height, exc.one_line())
        self.events.put_nowait(BlockValidity(request.height, request.block_hash, valid))

    async def _fetch_block(self, height: int, block_hash: bytes) -> Block | None:
        block = await fetch_block(self.peers, self._peers_by_height(), height, block_hash)
        if block is not None:
            self._remember_block(block)
        return block

    async def _decide(self, decision: Decide) -> None:
        if decision.height != self.chain.height + 1:
            return  # catch-up got there first; its HeadAdvanced tells the driver
        executed = self.executed.get(decision.block_hash)
        if executed is None:
            block = self.blocks.get(decision.block_hash) or await self._fetch_block(decision.height, decision.block_hash)
            if decision.height != self.chain.height + 1:
                return
            if block is None:
                log.warning("decided %s at height %d but cannot get the block; will sync", decision.block_hash.hex()[:12], decision.height)
                self.events.put_nowait(DecideFailed(decision.height))
                return
            try:
                executed = execute_block(
                    self.chain, block, verified=frozenset(self.mempool.verified),
                    verified_precommits=self.verified_precommits.digests,
                )
            except LedgerError as exc:
                log.error("decided block %d fails re-execution: %s", decision.height, exc.one_line())
                self.events.put_nowait(DecideFailed(decision.height))
                return
        commit_block(self.chain, executed, decision.commit, verified_precommits=self.verified_precommits.digests)
        self._after_commit(executed, decision.commit)
        self._send(decision.commit, compute_commit_recipients(decision.commit, len(self.genesis.validators), self.index))

    def _after_commit(self, executed: ExecutedBlock, commit: CommitCertificate) -> None:
        height = executed.block.height
        self.metrics.commits += 1
        self.metrics.txs_committed += len(executed.tx_hashes)
        self.metrics.last_commit_time = time.monotonic()
        for signature in commit.signatures:
            self.last_signed[signature.validator] = max(self.last_signed.get(signature.validator, 0), height)
        block = executed.block
        dropped = self.mempool.on_block_committed(executed.tx_hashes, tuple(zip(block.txs, block.documents, strict=True)))
        block_hash = executed.block.block_hash
        for position, tx_hash in enumerate(executed.tx_hashes):
            self._resolve(
                tx_hash,
                TxResult(tx_hash, STATUS_COMMITTED, height, executed.log_size - len(executed.tx_hashes) + position, block_hash),
            )
        for tx_hash, error in dropped:
            self.metrics.txs_rejected += 1
            self._resolve(tx_hash, TxResult(tx_hash, STATUS_REJECTED, error_code=error.code, error=str(error)))
        try:
            self.wal.prune(height, batch=True)
        except LedgerError as exc:
            # The log stays usable (the old records are only kept longer); the commit stands.
            log.error("write-ahead log prune after height %d failed: %s", height, exc.one_line())
        self.blocks = {h: b for h, b in self.blocks.items() if b.height > height}
        self.proposed = {slot: h for slot, h in self.proposed.items() if slot[0] > height}
        self.executed = {}
        self.verified_precommits.forget_below(height)
        self.seen_commits = {h: c for h, c in self.seen_commits.items() if h > height}
        self.commits_owed = set()
        self.events.put_nowait(_CHAIN_ADVANCED)
        self.events.put_nowait(TxsPending(len(self.mempool)))
        log.info("committed height %d: %d txs, log size %d", height, len(executed.tx_hashes), executed.log_size)

    def _record_evidence(self, action: ReportEvidence) -> None:
        self.metrics.evidence += 1
        evidence = action.evidence
        validator, height, round_, kind = evidence.key
        log.warning("equivocation evidence: validator %d signed two %ss at height %d round %d", validator, kind, height, round_)
        try:
            self.evidence_log.append(evidence)
        except LedgerError as exc:
            log.error("evidence not persisted: %s", exc.one_line())

    # --- transactions ----------------------------------------------------------------

    async def submit(self, entries: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes | None, LedgerError | None]]:
        """Admit transactions, replicate the new ones to peers, then acknowledge.

        A transaction is acknowledged only once at least f other validators hold it too,
        so a kill -9 of this node right after the answer cannot lose it. Never raises per
        entry; raises :class:`NodeUnavailableError` when too few peers answer.
        """
        results: list[tuple[bytes | None, LedgerError | None]] = []
        fresh: list[tuple[bytes, bytes | None]] = []
        for tx_bytes, content in entries:
            try:
                tx_hash, added = self.mempool.add(tx_bytes, content)
            except LedgerError as exc:
                results.append((None, exc))
                continue
            results.append((tx_hash, None))
            if added:
                fresh.append((tx_bytes, content))
        if fresh:
            self.events.put_nowait(TxsPending(len(self.mempool)))
            await self._replicate(fresh)
        return results

    async def _replicate(self, entries: list[tuple[bytes, bytes | None]]) -> None:
        needed = compute_max_faulty(len(self.genesis.validators))
        others = [i for i in range(len(self.genesis.validators)) if i != self.index]
        if not others:
            return
        body = cb([{"tx": t, "doc": c} for t, c in entries])
        pending = {asyncio.ensure_future(self.peers.request(i, "txs", body)) for i in others}
        delivered = 0
        # Answer as soon as f peers hold the transactions; slower peers keep receiving
        # them in the background (a stalled peer must not stall every submission).
        while pending and delivered < needed:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            delivered += sum(1 for task in done if task.exception() is None)
        for task in pending:
            task.add_done_callback(_ignore_outcome)
        if delivered < needed:
            raise NodeUnavailableError(
                f"expected to replicate to at least {needed} other validators, reached {delivered}; "
                "the transactions stay pending here and a retry is safe"
            )

    def tx_result(self, tx_hash: bytes) -> TxResult | None:
        location = self.chain.get_tx_location(tx_hash)
        if location is not None:
            header = self.chain.get_header(location.height)
            return TxResult(
                tx_hash, STATUS_COMMITTED, location.height, location.log_index,
                header.block_hash if header else None,
            )
        status = self.mempool.status(tx_hash)
        if status == STATUS_PENDING:
            return TxResult(tx_hash, STATUS_PENDING)
        if status == STATUS_REJECTED:
            rejection = self.mempool.rejections[tx_hash]
            return TxResult(tx_hash, STATUS_REJECTED, error_code=rejection.code, error=rejection.message)
        return None

    async def wait_final(self, tx_hashes: list[bytes], timeout_s: float) -> list[TxResult]:
        """Wait until each transaction is committed or rejected, or the timeout passes."""
        return await self.waiters.wait_final(tx_hashes, timeout_s, self.tx_result)

    def _resolve(self, tx_hash: bytes, result: TxResult) -> None:
        self.waiters.resolve(tx_hash, result)

    # --- peers ------------------------------------------------------------------------

    async def on_peer_message(self, message: PeerMessage) -> bytes | None:
        """Handle a message whose envelope signature the transport already checked."""
        handler = self._peer_handlers.get(message.kind)
        if handler is None:
            raise PeerMalformedError(f"expected a known message kind, got {message.kind!r}")
        result = handler(message.sender, message.body)
        if asyncio.iscoroutine(result):
            result = await result
        return result  # type: ignore[no-any-return]

    @property
    def _peer_handlers(self) -> dict[str, Any]:
        return {
            "vote": self._on_vote_message,
            "proposal": self._on_proposal_message,
            "commit": self._on_commit_message,
            "txs": self._on_txs_message,
            "status": self._on_status_request,
            "get_blocks": self._on_get_blocks_request,
            "get_block": self._on_get_block_request,
        }

    def _on_vote_message(self, sender: int, body: bytes) -> None:
        signed = SignedVote.decode(body)
        if signed.vote.height <= self.chain.height:
            # A height already committed: the machine would drop it, so its signature is not
            # worth checking (at 58 zones a third of each height's precommits land here).
            # The sender is the authenticated stream peer, so it can ask for one certificate
            # per height, nothing more.
            if is_commit_owed(signed.vote.height, self.chain.height) and sender not in self.commits_owed:
                self.commits_owed.add(sender)
                commit = self.chain.get_commit(self.chain.height)
                if commit is not None:
                    self.peers.send(sender, "commit", commit.encode())
            return
        self._verify_once(body, lambda: self._verify_vote(signed))
        vote = signed.vote
        if vote.type == PRECOMMIT and vote.block_hash is not None:
            # Only a precommit for a block shows the validator signed at that height.
            self.last_signed[vote.validator] = max(self.last_signed.get(vote.validator, 0), vote.height)
        self.events.put_nowait(VoteReceived(signed))

    def consensus_config_for(self, height: int) -> ConsensusConfig:
        """The machine's configuration at ``height``: the chain's set for it (DESIGN §12)
        with this validator's place in it, and the consensus settings in force."""
        validators = self.chain.validators_for(height)
        settings = self.chain.consensus
        cache_key = (validators, settings.timeout_propose_ms, settings.timeout_delta_ms)
        config = self._configs.get(cache_key)
        if config is None:
            index = validators.index(self.key.public) if self.key.public in validators else NOT_A_MEMBER
            config = dataclasses.replace(
                self.consensus_config, validators=validators, index=index,
                timeout_propose_ms=settings.timeout_propose_ms, timeout_delta_ms=settings.timeout_delta_ms,
            )
            self._configs = {cache_key: config}  # sets change rarely: keep the latest only
        return config

    def _verify_vote(self, signed: SignedVote) -> None:
        signed.verify(self.chain.validators_for(signed.vote.height))
        self.verified_precommits.add_vote(signed)

    def _on_proposal_message(self, sender: int, body: bytes) -> None:
        m = expect_map(decode_cb(body), "proposal message", frozenset({"proposal", "block"}))
        raw_proposal = expect_bytes(m["proposal"], "proposal")
        signed = SignedProposal.decode(raw_proposal)
        validators = self.chain.validators_for(signed.proposal.height)
        self._verify_once(raw_proposal, lambda: signed.verify(validators))
        block = Block.decode(expect_bytes(m["block"], "block"))
        p = signed.proposal
        if p.proposer != compute_proposer(p.height, p.round, len(validators)):
            raise PeerMalformedError(
                f"proposal: expected validator {compute_proposer(p.height, p.round, len(validators))} "
                f"to propose height {p.height} round {p.round}, got validator {p.proposer}"
            )
        if block.block_hash != p.block_hash or block.height != p.height or block.header.round > p.round:
            raise PeerMalformedError("proposal does not match the block it carries")
        if is_block_worth_keeping(self.state, self.chain.height, p.height, p.round) and self.proposed.setdefault(
            (p.height, p.round), block.block_hash
        ) == block.block_hash:
            # An equivocating proposer's second block is not kept: the machine counts the
            # first proposal of a round only (the second is evidence).
            self._remember_block(block)
        self.events.put_nowait(ProposalReceived(signed))

    def _on_commit_message(self, sender: int, body: bytes) -> None:
        commit = CommitCertificate.decode(body)
        if commit.height <= self.chain.height:
            return
        seen = self.seen_commits.get(commit.height)
        if seen is not None and seen.block_hash == commit.block_hash:
            # Every validator broadcasts its certificate as it decides: at 58 zones that is
            # 57 certificates of 39 signatures for one block. One validated is enough to
            # decide; the others only say their sender got there too.
            self.events.put_nowait(CommitSeen(sender, seen))
            return
        validate_commit(
            commit, chain_id=self.genesis.chain_id, validators=self.chain.validators_for(commit.height),
            height=commit.height, block_hash=commit.block_hash, verified=self.verified_precommits.digests,
        )
        self.verified_precommits.add_commit(commit, self.genesis.chain_id)
        self.seen_commits.setdefault(commit.height, commit)
        self.events.put_nowait(CommitSeen(sender, commit))

    async def _on_txs_message(self, sender: int, body: bytes) -> bytes:
        """A peer's batch: decoded and signature-checked beside the loop, admitted in chunks."""
        entries = await run_off_loop(len(body), compute_verified_batch, body, self.genesis.chain_id)
        for start in range(0, len(entries), ADMISSION_CHUNK):
            for tx_bytes, content in entries[start:start + ADMISSION_CHUNK]:
                with contextlib.suppress(LedgerError):
                    self.mempool.add(tx_bytes, content)
            await asyncio.sleep(0)  # votes are counted between chunks
        self.events.put_nowait(TxsPending(len(self.mempool)))
        return b""

    def _on_status_request(self, sender: int, body: bytes) -> bytes:
        return serve_status(self.chain)

    def _on_get_blocks_request(self, sender: int, body: bytes) -> bytes:
        return serve_blocks(self.chain, body)

    def _on_get_block_request(self, sender: int, body: bytes) -> bytes:
        return serve_block(self.chain, self.blocks, body)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed: %s", task.exception())

    def _verify_once(self, raw: bytes, check: Any) -> None:
        if raw in self.verified_messages:
            return
        check()
        self.verified_messages[raw] = None
        if len(self.verified_messages) > 50_000:
            self.verified_messages.popitem(last=False)

    def _peers_by_height(self) -> list[int]:
        others = [i for i in range(len(self.genesis.validators)) if i != self.index]
        return sorted(others, key=lambda i: -self.driver.peer_heights.get(i, 0))

    # --- catch-up -------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        """The periodic tick; the driver decides whether it calls for a sync."""
        while True:
            await asyncio.sleep(SYNC_TICK_MS / 1000)
            self.events.put_nowait(SyncTick())

    async def _run_sync(self) -> None:
        """One sync the driver asked for, then tell it the sync is over."""
        try:
            await self.sync_once()
        except Exception:  # noqa: BLE001 - sync retries; a bad peer must not stop it
            log.exception("sync failed")
        finally:
            self.events.put_nowait(SyncFinished())

    async def sync_once(self) -> int:
        """Fetch and apply blocks peers have beyond our head; return how many were applied.

        Each applied block is reported to the driver at once (through the event queue),
        which never replaces a machine that already entered the next height.
        """
        applied = await self.sync.sync_once(self.peers, self._peers_by_height())
        self.metrics.synced_blocks += applied
        return applied

    # --- views for the API ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return compute_status(
            self.chain, self.genesis, round_=self.state.round, consensus_height=self.state.height,
            mempool_size=len(self.mempool), node={"validator_index": self.index, "zone_id": self.zone_id},
            peers={
                str(i): {"up": s.up, "consecutive_failures": s.consecutive_failures}
                for i, s in self.peers.stats().items()
            },
        )

    def require_ready(self) -> None:
        if self._stopping:
            raise NodeUnavailableError("node is shutting down")


def compute_verified_batch(body: bytes, chain_id: str) -> list[tuple[bytes, bytes | None]]:
    """The entries of a peer's ``txs`` batch whose decoding, chain id and signature hold
    (remembered as verified, so admission does not check the signature again). Pure."""
    out: list[tuple[bytes, bytes | None]] = []
    for item in expect_list(decode_cb(body), "txs")[:MAX_SUBMISSION_BATCH]:
        m = expect_map(item, "tx", frozenset({"tx", "doc"}))
        tx_bytes = expect_bytes(m["tx"], "tx")
        content = None if m["doc"] is None else expect_bytes(m["doc"], "doc")
        try:
            compute_verified_envelope(tx_bytes, chain_id)
        except LedgerError:
            continue
        out.append((tx_bytes, content))
    return out


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so a failed background delivery is not reported as lost


def load_node(config_path: str) -> Node:
    return Node(NodeConfig.load(config_path))
