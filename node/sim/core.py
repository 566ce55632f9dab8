"""The simulator's event loop: n validators in one process, on a virtual clock, each
running the driver of :mod:`node.driver` exactly as the node runtime does.

Every endpoint (an honest validator, or one of a Byzantine validator's processes) is a
:class:`~node.driver.DriverState` stepped with ``drive(d, item, now_ms)`` on its own
skewed clock; the simulator performs its commands the way :mod:`node.runtime` does:

* ``PersistThenSend``: append to the endpoint's modelled write-ahead log (with the
  height), then send; ``Broadcast``: send (a proposal only when its block is known,
  as the runtime, which sends the block along);
* ``ScheduleTimeout``, ``ArmHeartbeat`` and the 1 s sync tick: timers on the
  endpoint's clock, forgotten when it crashes;
* ``RequestBlock``/``ValidateBlock``: blocks are hashes and validity a predicate; a
  block not at hand is fetched from peers one by one (``get_block``);
* ``Decide``: fetch the block if needed (``DecideFailed`` if nobody has it), store it
  with its certificate, broadcast the certificate, then ``HeadAdvanced`` with the WAL
  records of the next height and ``TxsPending``;
* ``StartSync``: the runtime's ``sync_once`` (``node.sync``): peers in order of known
  height, one status request each (5 s timeout; some peers answer late or never),
  blocks with certificates fetched from each peer ahead, each certificate checked,
  each block stored and reported as ``HeadAdvanced``, then ``SyncFinished``.

A delivered certificate is checked and fed as ``CommitSeen``; signatures are real
Ed25519, each distinct message verified once per schedule. Crashes lose everything
but the store and the WAL (an amnesiac loses the WAL too); a restarted endpoint is a
new driver fed ``Boot`` with the records of head + 1.

The driver and the machine are looked up as module attributes (``driver.drive``), so
a planted bug patched into :mod:`node.driver` or :mod:`node.consensus`
(:mod:`node.sim.mutants`) runs here as it would in a node.
"""

from __future__ import annotations

import functools
import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ledger.blocks import (
    CommitCertificate,
    SignedVote,
    compute_max_faulty,
    compute_proposer,
    validate_commit,
)
from ledger.encoding import H, cb
from ledger.errors import LedgerError
from ledger.keys import SigningKey
from ledger.limits import SYNC_BATCH
from node import driver
from node.consensus import (
    NOT_A_MEMBER,
    BlockReady,
    BlockValidity,
    Broadcast,
    ConsensusConfig,
    Decide,
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
    compute_commit_recipients,
    get_message_height,
    is_block_worth_keeping,
    is_commit_owed,
)
from node.events import Event
from node.messages import ConsensusMessage, SignedProposal
from node.sim.adversaries import Adversary, Send, make_adversary
from node.sim.faults import STATUS_NEVER, MidCrash, Schedule, SimParams
from node.sim.invariants import Oracle, compute_book_bound
from node.verified_precommits import VerifiedPrecommits

CHAIN_ID = "zoneledger-sim"
LIVENESS_BOUND_MS_PER_HEIGHT = 30_000
"""After GST every honest validator must decide each height within this much virtual time."""
TRACE_LENGTH = 30
IN_FLIGHT_MS = 3_000
"""Longest a message sent before a crash may still be travelling (two hops of the slowest delay)."""
REQUEST_TIMEOUT_MS = 5_000
"""A peer request gives up after this long (``node.peers``: 5 s)."""


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What the simulator knows of a block hash."""

    height: int
    time_ms: int
    valid: bool


@dataclass(slots=True)
class Stored:
    """A committed block."""

    block_hash: bytes
    commit: CommitCertificate
    time_ms: int


@dataclass(slots=True, eq=False)
class Endpoint:
    """One process: a validator's driver and what its runtime holds (a Byzantine twin is a second one)."""

    ident: int
    validator: int
    tag: str
    """"" for ordinary endpoints, "A"/"B" for twins."""
    behavior: str
    """"honest" or a Byzantine behaviour."""
    config: DriverConfig
    rate: float
    """True milliseconds per millisecond of this endpoint's clock."""
    offset: int
    driver: DriverState
    adversary: Adversary
    up: bool = True
    incarnation: int = 0
    wal: list[tuple[int, PersistThenSend]] = field(default_factory=list)
    signed_count: int = 0
    synced_count: int = 0
    store: dict[int, Stored] = field(default_factory=dict)
    head: int = 0
    commits_owed: set[int] = field(default_factory=set)
    """Peers answered with the head's certificate, emptied as the head advances (the runtime's)."""
    blocks: set[bytes] = field(default_factory=set)
    """Blocks at hand (built, carried by a kept proposal, fetched); stored ones are served from ``store``."""
    syncing: SyncRun | None = None
    inbox: deque[Event | DriverInput] = field(default_factory=deque)
    busy: bool = False
    peers: list[Endpoint] = field(default_factory=list)
    """Endpoints this one's messages can reach (twins talk to their own world only)."""
    trace: deque[tuple[int, str, Any]] = field(default_factory=lambda: deque(maxlen=TRACE_LENGTH))

    @property
    def honest(self) -> bool:
        return self.behavior == "honest"


@dataclass(slots=True, eq=False)
class SyncRun:
    """One ``sync_once`` in progress."""

    incarnation: int
    order: list[int]
    position: int = 0
    their_head: int = 0


@dataclass(slots=True, eq=False)
class Request:
    """A peer request in flight; answered once, by the reply or the timeout."""

    src: Endpoint
    incarnation: int
    started: int
    callback: Callable[[Any], None]
    done: bool = False


@dataclass(slots=True)
class ScheduleResult:
    """What one schedule produced."""

    schedule: Schedule
    decided_heights: int = 0
    messages: int = 0
    events: int = 0
    evidence: int = 0
    syncs: int = 0
    synced_blocks: int = 0
    restarts: int = 0
    max_book: int = 0
    """Most messages an honest machine's vote book held at a sync tick."""
    safety: list[str] = field(default_factory=list)
    liveness: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    end_ms: int = 0
    halt_new_heights: int = 0
    """Heights first decided while more than f validators were down (after ``IN_FLIGHT_MS``)."""
    resumed_heights: int = 0
    """Heights first decided after the last crashed validator returned."""

    @property
    def ok(self) -> bool:
        return not self.safety and not self.liveness


_KEYS: dict[int, list[SigningKey]] = {}


def get_keys(n: int) -> list[SigningKey]:
    if n not in _KEYS:
        _KEYS[n] = [SigningKey.from_label(f"sim validator {i}") for i in range(n)]
    return _KEYS[n]


class Simulation:
    """One schedule on a virtual clock."""

    def __init__(self, schedule: Schedule, params: SimParams) -> None:
        self.schedule = schedule
        self.params = params
        self.n = schedule.n
        self.rng = random.Random(schedule.seed ^ 0x5EED)
        self.keys = get_keys(schedule.n)
        self.validators = tuple(k.public for k in self.keys)
        self.now = 0
        self.queue: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.oracle = Oracle(schedule.n, schedule.set_size)
        self.signature_ok: dict[int, tuple[ConsensusMessage, bool]] = {}
        self.commit_ok: dict[int, tuple[CommitCertificate, bool]] = {}
        self.precommits = VerifiedPrecommits(self.validators_for, head=None)
        self._configs: dict[tuple[int, int], ConsensusConfig] = {}
        self.block_info: dict[bytes, BlockInfo] = {}
        self.first_decided_ms: dict[int, int] = {}
        self.done: set[int] = set()
        self.last_restart = max((c.up_ms for c in schedule.crashes), default=0)
        self.mid_crashes: dict[int, list[MidCrash]] = {}
        for crash in schedule.mid_crashes:
            self.mid_crashes.setdefault(crash.validator, []).append(crash)
        self.loaded = self.rng.randrange(schedule.n)
        self.result = ScheduleResult(schedule)
        self.nodes: list[Endpoint] = []
        for v in range(schedule.n):
            behavior = schedule.behaviors.get(v, "honest")
            if behavior == "silent":
                continue
            consensus = self.config_for(v, 1)
            config = DriverConfig(
                consensus, config_for=functools.partial(self.config_for, v), heartbeat_ms=schedule.heartbeat_ms,
            )
            for tag in ("A", "B") if behavior == "twins" else ("",):
                node = Endpoint(
                    len(self.nodes), v, tag, behavior, config, schedule.clock_rate[v], schedule.clock_offset[v],
                    driver.new_driver(config), Adversary(),
                )
                node.adversary = make_adversary(behavior, self, node)
                self.nodes.append(node)
        self.honest = [nd for nd in self.nodes if nd.honest]
        for node in self.nodes:
            node.peers = [dst for dst in self.nodes if self._is_linked(node, dst)]

    def validators_for(self, height: int) -> tuple[bytes, ...]:
        """The set of ``height``: the first ``set_size(height)`` validators (DESIGN §12
        membership, drawn as joins and leaves at the end of the admission order)."""
        return self.validators[: self.schedule.set_size(height)]

    def config_for(self, validator: int, height: int) -> ConsensusConfig:
        """``validator``'s machine configuration at ``height``: its place in the height's
        set, or ``NOT_A_MEMBER`` outside it (it follows without signing)."""
        size = self.schedule.set_size(height)
        config = self._configs.get((validator, size))
        if config is None:
            config = ConsensusConfig(
                CHAIN_ID, self.validators[:size], validator if validator < size else NOT_A_MEMBER, self.keys[validator],
                timeout_propose_ms=self.schedule.timeouts_ms[0], timeout_delta_ms=self.schedule.timeouts_ms[1],
            )
            self._configs[(validator, size)] = config
        return config

    # --- the event loop -------------------------------------------------------------

    def run(self) -> ScheduleResult:
        for node in self.nodes:
            self._boot(node)
        for crash in self.schedule.crashes:
            for node in self._endpoints(crash.validator):
                self.at(crash.down_ms, self._crash, node)
                self.at(crash.up_ms, self._restart, node)
        deadline = self.schedule.gst_ms + LIVENESS_BOUND_MS_PER_HEIGHT * self.schedule.heights
        honest = len(self.honest)
        queue = self.queue
        while queue and not self.result.safety:
            t, _, fn, args = heapq.heappop(queue)
            if t > deadline:
                break
            self.now = t
            self.result.events += 1
            fn(*args)
            if len(self.done) == honest and t >= self.last_restart:
                break
        self.result.end_ms = self.now
        self._check_liveness()
        return self.result

    def at(self, when: int, fn: Callable[..., None], *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, fn, args))

    def _endpoints(self, validator: int) -> list[Endpoint]:
        return [nd for nd in self.nodes if nd.validator == validator]

    def local_now(self, node: Endpoint) -> int:
        """What ``node``'s clock reads now."""
        return node.offset + int(self.now / node.rate)

    def _timer(self, node: Endpoint, delay_ms: int, item: Event | DriverInput) -> None:
        self.at(self.now + max(1, int(delay_ms * node.rate)), self._fire, node, node.incarnation, item)

    def _fire(self, node: Endpoint, incarnation: int, item: Event | DriverInput) -> None:
        if not node.up or node.incarnation != incarnation:
            return
        if isinstance(item, SyncTick):
            self._timer(node, SYNC_TICK_MS, item)
            self._check_book(node)
        self.feed(node, item)

    # --- the runtime: feed the driver, perform its commands ----------------------------

    def feed(self, node: Endpoint, item: Event | DriverInput) -> None:
        """Queue ``item`` for ``node``'s driver (the runtime's single input queue) and drain it."""
        node.inbox.append(item)
        if node.busy:
            return
        node.busy = True
        try:
            while node.inbox and node.up:
                item = node.inbox.popleft()
                node.trace.append((self.now, "in", item))
                incarnation = node.incarnation
                node.driver, commands = driver.drive(node.driver, item, self.local_now(node))
                self._perform(node, commands, incarnation)
        finally:
            node.busy = False
        if not node.up:
            node.inbox.clear()

    def _perform(self, node: Endpoint, commands: list[Command], incarnation: int) -> None:
        for command in commands:
            if not node.up or node.incarnation != incarnation:
                return  # crashed in the middle: the rest never ran
            if isinstance(command, ScheduleTimeout):
                self._timer(node, command.delay_ms, TimeoutFired(command.kind, command.height, command.round))
                continue
            if isinstance(command, ArmHeartbeat):
                self._timer(node, command.delay_ms, HeartbeatFired())
                continue
            node.trace.append((self.now, "out", command))
            if isinstance(command, PersistThenSend):
                self._persist_then_send(node, command)
            elif isinstance(command, Broadcast):
                self.send_own(node, command.message, command.to)
            elif isinstance(command, RequestBlock):
                self._build(node, command)
            elif isinstance(command, ValidateBlock):
                self._validate(node, command)
            elif isinstance(command, Decide):
                self._decide(node, command)
            elif isinstance(command, ReportEvidence):
                self.result.evidence += 1
            elif isinstance(command, StartSync):
                self._start_sync(node)

    def _persist_then_send(self, node: Endpoint, command: PersistThenSend) -> None:
        message = command.message
        node.wal.append((get_height(message), command))  # durable before anything leaves
        node.signed_count += 1
        self._on_own_message(node, message)
        if self._is_mid_crash_due(node, "signed", node.signed_count, before_send=True):
            return
        self.send_own(node, message)
        self._is_mid_crash_due(node, "signed", node.signed_count, before_send=False)

    def _on_own_message(self, node: Endpoint, message: ConsensusMessage) -> None:
        if not isinstance(message, SignedVote | SignedProposal) or get_signer(message) != node.validator:
            return
        if node.honest:
            violation = self.oracle.check_own(message)
            if violation is not None:
                self._violation(node, violation)
        else:
            self.oracle.record(message)

    def send_own(self, node: Endpoint, message: ConsensusMessage, to: frozenset[int] | None = None) -> None:
        """What the runtime's ``_send`` does with a message the driver hands it (to every
        peer, or to those ``to`` names)."""
        self._on_own_message(node, message)
        if isinstance(message, SignedProposal) and not self.has_block(node, message.proposal.block_hash):
            return  # the runtime sends a proposal with its block, and cannot without it
        for send in node.adversary.on_send(message):
            if to is not None:
                send = replace(send, targets=to if send.targets is None else send.targets & to)
            self.broadcast(node, send)

    def _build(self, node: Endpoint, request: RequestBlock) -> None:
        if request.height != node.head + 1:
            return
        block_hash = self.new_block(node, request.height, request.round, valid=not node.adversary.builds_invalid)
        self.feed(node, BlockReady(request.height, request.round, block_hash))

    def new_block(self, node: Endpoint, height: int, round_: int, valid: bool = True) -> bytes:
        """A block built by ``node`` (its clock gives the time); the simulator remembers its validity."""
        self.seq += 1
        block_hash = H(cb(["sim block", height, round_, node.validator, node.tag, self.schedule.seed, self.seq]))
        head_time = node.store[node.head].time_ms if node.head else 0
        self.block_info[block_hash] = BlockInfo(height, max(self.local_now(node), head_time + 1), valid)
        node.blocks.add(block_hash)
        return block_hash

    def has_block(self, node: Endpoint, block_hash: bytes) -> bool:
        if block_hash in node.blocks:
            return True
        info = self.block_info.get(block_hash)
        stored = node.store.get(info.height) if info is not None else None
        return stored is not None and stored.block_hash == block_hash

    def _validate(self, node: Endpoint, request: ValidateBlock) -> None:
        """The runtime's ``_validate``: the block at hand, or fetched; false when it cannot be had."""
        def fetched(found: bool) -> None:
            self.feed(node, BlockValidity(request.height, request.block_hash, found and self._is_block_valid(node, request)))

        if self.has_block(node, request.block_hash):
            fetched(True)
        else:
            self._fetch_block(node, request.block_hash, fetched)

    def _is_block_valid(self, node: Endpoint, request: ValidateBlock) -> bool:
        info = self.block_info.get(request.block_hash)
        if info is None or request.height != node.head + 1:
            return False
        return info.valid or node.adversary.accepts_any_block

    def _decide(self, node: Endpoint, decision: Decide) -> None:
        if decision.height != node.head + 1:
            return  # catch-up got there first; its HeadAdvanced told the driver

        def fetched(found: bool) -> None:
            if decision.height != node.head + 1:
                return
            if not found:
                self.feed(node, DecideFailed(decision.height))
                return
            self._commit_decided(node, decision)

        if self.has_block(node, decision.block_hash):
            self._commit_decided(node, decision)
        else:
            self._fetch_block(node, decision.block_hash, fetched)

    def _commit_decided(self, node: Endpoint, decision: Decide) -> None:
        info = self.block_info.get(decision.block_hash)
        if info is None or not (info.valid or node.adversary.accepts_any_block):
            if node.honest:
                self._violation(node, f"validity: height {decision.height} decided an invalid block")
            self.feed(node, DecideFailed(decision.height))
            return
        self._store(node, decision.height, decision.block_hash, decision.commit)
        size = self.schedule.set_size(decision.height)
        # Those outside the height's set signed nothing, so they are owed the certificate too.
        followers = frozenset(range(size, self.n)) - {node.validator}
        self.send_own(node, decision.commit, compute_commit_recipients(decision.commit, size, node.validator) | followers)
        self.feed(node, self._head_advanced(node))
        self.feed(node, TxsPending(self._pending(node)))

    def _store(self, node: Endpoint, height: int, block_hash: bytes, commit: CommitCertificate) -> None:
        """Commit a block: the store, the WAL pruned, blocks of old heights forgotten, the checks."""
        info = self.block_info[block_hash]
        node.store[height] = Stored(block_hash, commit, info.time_ms)
        node.head = height
        node.commits_owed = set()
        node.wal = [(h, record) for h, record in node.wal if h > height]
        node.blocks = {b for b in node.blocks if b in self.block_info and self.block_info[b].height > height}
        if not node.honest:
            return
        if not self.is_commit_valid(commit) or (commit.height, commit.block_hash) != (height, block_hash):
            self._violation(node, f"validity: height {height} committed with an invalid commit certificate")
        if not info.valid:
            self._violation(node, f"validity: height {height} committed an invalid block")
        violation = self.oracle.check_decision(height, block_hash)
        if violation is not None:
            self._violation(node, violation)
        if height == self.schedule.heights:
            self.done.add(node.ident)
        if height not in self.first_decided_ms:
            self.first_decided_ms[height] = self.now
            self.result.decided_heights = len([h for h in self.first_decided_ms if h <= self.schedule.heights])
            size = self.schedule.set_size(height)
            if self._down_count() > compute_max_faulty(size) and self.now > self._outage_start() + IN_FLIGHT_MS:
                self.result.halt_new_heights += 1
            if self.now >= self.last_restart:
                self.result.resumed_heights += 1

    def _head_advanced(self, node: Endpoint) -> HeadAdvanced:
        stored = node.store[node.head]
        return HeadAdvanced(node.head, stored.time_ms, stored.commit, self.get_records(node, node.head + 1))

    def get_records(self, node: Endpoint, height: int) -> tuple[PersistThenSend, ...]:
        return tuple(record for h, record in node.wal if h == height)

    def _pending(self, node: Endpoint) -> int:
        load = self.schedule.load
        return 1 if load == "busy" or (load == "one" and node.validator == self.loaded) else 0

    def _down_count(self) -> int:
        return len({nd.validator for nd in self.nodes if not nd.up})

    def _outage_start(self) -> int:
        return max((c.down_ms for c in self.schedule.crashes), default=0)

    # --- checks on what arrives -------------------------------------------------------

    def is_signature_valid(self, message: SignedVote | SignedProposal) -> bool:
        cached = self.signature_ok.get(id(message))
        if cached is not None:
            return cached[1]
        try:
            message.verify(self.validators_for(get_message_height(message)))
            ok = True
        except LedgerError:
            ok = False
        self.signature_ok[id(message)] = (message, ok)
        if ok and isinstance(message, SignedVote):
            self.precommits.add_vote(message)
        return ok

    def is_commit_valid(self, commit: CommitCertificate) -> bool:
        """``validate_commit`` against the certificate's own height and block, each
        precommit signature verified once per schedule."""
        cached = self.commit_ok.get(id(commit))
        if cached is not None:
            return cached[1]
        try:
            validate_commit(
                commit, chain_id=CHAIN_ID, validators=self.validators_for(commit.height), height=commit.height,
                block_hash=commit.block_hash, verified=self.precommits.digests,
            )
            ok = True
        except LedgerError:
            ok = False
        if ok:
            self.precommits.add_commit(commit, CHAIN_ID)
        self.commit_ok[id(commit)] = (commit, ok)
        return ok

    # --- the network ----------------------------------------------------------------

    def _is_linked(self, src: Endpoint, dst: Endpoint) -> bool:
        """Whether ``src``'s messages can reach ``dst`` at all (twins talk to their world only)."""
        if dst is src or (dst.validator == src.validator and not src.tag):
            return False
        for a, b in ((src, dst), (dst, src)):
            if a.tag and not b.tag and b.honest:
                return (b.validator in self.schedule.world_b) == (a.tag == "B")
        return not (src.tag and dst.tag and src.tag != dst.tag)

    def _is_cut(self, a: int, b: int) -> bool:
        """Whether validators ``a`` and ``b`` are partitioned now."""
        for p in self.schedule.partitions:
            if p.start_ms <= self.now < p.end_ms and (a in p.group) != (b in p.group):
                return True
        return False

    def broadcast(self, src: Endpoint, send: Send) -> None:
        """Send ``send.message`` from ``src`` to its peers (or those ``send.targets`` names)."""
        if not src.up:
            return
        message = send.message
        if isinstance(message, SignedVote | SignedProposal) and self.is_signature_valid(message):
            self.oracle.record(message)
        s, random = self.schedule, self.rng.random
        before_gst = self.now < s.gst_ms
        low, high = s.delay_ms
        span, targets, drop, duplicate, reorder = high - low + 1, send.targets, s.drop, s.duplicate, s.reorder
        start = self.now + send.delay_ms + low
        queue, deliver = self.queue, self._deliver
        sent = 0
        for dst in src.peers:
            if targets is not None and dst.validator not in targets:
                continue
            if before_gst and (random() < drop or self._is_cut(src.validator, dst.validator)):
                continue
            for _ in range(2 if random() < duplicate else 1):
                when = start + int(random() * span)
                if random() < reorder:
                    when += int(random() * (3 * high + 1))
                sent += 1
                self.seq += 1
                heapq.heappush(queue, (when, self.seq, deliver, (src, dst, message)))
        self.result.messages += sent

    def _deliver(self, src: Endpoint, dst: Endpoint, message: ConsensusMessage) -> None:
        """What the runtime's peer handlers do with a message, then the driver."""
        if not dst.up:
            return
        if isinstance(message, CommitCertificate):
            if message.height > dst.head and self.is_commit_valid(message):
                self.feed(dst, CommitSeen(src.validator, message))
            return
        if not self.is_signature_valid(message):
            return  # the transport drops forgeries before the driver sees them
        if isinstance(message, SignedVote):
            self._answer_behind(src, dst, message.vote.height)
            self.feed(dst, VoteReceived(message))
            return
        p = message.proposal
        if p.proposer != compute_proposer(p.height, p.round, self.schedule.set_size(p.height)):
            return
        if is_block_worth_keeping(dst.driver.machine, dst.head, p.height, p.round):
            dst.blocks.add(p.block_hash)
        self.feed(dst, ProposalReceived(message))

    def _answer_behind(self, src: Endpoint, dst: Endpoint, vote_height: int) -> None:
        """The runtime's answer to a vote for its head: the head's certificate, once per peer."""
        if not is_commit_owed(vote_height, dst.head) or src.validator in dst.commits_owed:
            return
        dst.commits_owed.add(src.validator)
        stored = dst.store.get(dst.head)
        if stored is not None:
            self.send_own(dst, stored.commit, frozenset({src.validator}))

    # --- requests between peers (sync, block fetch) -----------------------------------

    def endpoint_for(self, src: Endpoint, validator: int) -> Endpoint | None:
        """The process ``src`` reaches when it calls validator ``validator``."""
        for dst in src.peers:
            if dst.validator == validator:
                return dst
        return None

    def request(self, src: Endpoint, validator: int, kind: str, arg: Any, callback: Callable[[Any], None]) -> None:
        """A peer request: ``callback(reply)`` once, with ``None`` when it failed or timed out."""
        call = Request(src, src.incarnation, self.now, callback)
        dst = self.endpoint_for(src, validator)
        s = self.schedule
        if dst is None or (self.now < s.gst_ms and (self.rng.random() < s.drop or self._is_cut(src.validator, validator))):
            self._time_out(call)
            return
        self.at(self.now + self.rng.randint(*s.delay_ms), self._serve, call, dst, kind, arg)

    def _time_out(self, call: Request) -> None:
        self.at(call.started + int(REQUEST_TIMEOUT_MS * call.src.rate), self._answer, call, None)

    def _serve(self, call: Request, dst: Endpoint, kind: str, arg: Any) -> None:
        s = self.schedule
        back = self.rng.randint(*s.delay_ms)
        if not dst.up or dst.adversary.is_mute():
            self.at(self.now + back, self._answer, call, None)  # connection refused
            return
        if self.now < s.gst_ms and (self.rng.random() < s.drop or self._is_cut(call.src.validator, dst.validator)):
            self._time_out(call)
            return
        if kind == "status":
            extra = s.slow_status.get(dst.validator, 0)
            if extra == STATUS_NEVER:
                self._time_out(call)
                return
            back += extra
            reply: Any = dst.adversary.on_status(dst.head)
        elif kind == "get_blocks":
            reply = dst.adversary.on_get_blocks([
                (h, dst.store[h].block_hash, dst.store[h].commit) for h in range(arg, min(arg + SYNC_BATCH, dst.head + 1))
            ])
        else:
            reply = self.has_block(dst, arg)
        if self.now + back - call.started > int(REQUEST_TIMEOUT_MS * call.src.rate):
            self._time_out(call)
            return
        self.at(self.now + back, self._answer, call, reply)

    def _answer(self, call: Request, reply: Any) -> None:
        src = call.src
        if call.done or not src.up or src.incarnation != call.incarnation:
            return
        call.done = True
        call.callback(reply)

    def _peers_by_height(self, node: Endpoint) -> list[int]:
        heights = node.driver.peer_heights
        others = [v for v in range(self.n) if v != node.validator]
        return sorted(others, key=lambda v: -heights.get(v, 0))

    def _fetch_block(self, node: Endpoint, block_hash: bytes, callback: Callable[[bool], None]) -> None:
        """The runtime's ``_fetch_block``: ask peers one by one until one has it."""
        order = self._peers_by_height(node)

        def attempt(position: int) -> None:
            if position == len(order):
                callback(False)
                return

            def replied(has: Any) -> None:
                if has is True:
                    node.blocks.add(block_hash)
                    callback(True)
                else:
                    attempt(position + 1)

            self.request(node, order[position], "get_block", block_hash, replied)

        attempt(0)

    # --- sync: the runtime's sync_once ------------------------------------------------

    def _start_sync(self, node: Endpoint) -> None:
        run = SyncRun(node.incarnation, self._peers_by_height(node))
        node.syncing = run
        self.result.syncs += 1
        self._sync_next(node, run)

    def _is_sync_stale(self, node: Endpoint, run: SyncRun) -> bool:
        return node.syncing is not run or not node.up or node.incarnation != run.incarnation

    def _sync_next(self, node: Endpoint, run: SyncRun) -> None:
        if self._is_sync_stale(node, run):
            return
        if run.position == len(run.order):
            node.syncing = None
            self.feed(node, SyncFinished())
            return
        peer = run.order[run.position]
        run.position += 1
        self.request(node, peer, "status", None, lambda reply: self._on_status(node, run, peer, reply))

    def _on_status(self, node: Endpoint, run: SyncRun, peer: int, reply: Any) -> None:
        if self._is_sync_stale(node, run):
            return
        if not isinstance(reply, int) or reply < 0:
            self._sync_next(node, run)
            return
        self.feed(node, PeerAt(peer, reply + 1))
        run.their_head = reply
        self._sync_fetch(node, run, peer)

    def _sync_fetch(self, node: Endpoint, run: SyncRun, peer: int) -> None:
        if self._is_sync_stale(node, run):
            return
        if run.their_head <= node.head:
            self._sync_next(node, run)
            return
        self.request(node, peer, "get_blocks", node.head + 1, lambda items: self._on_blocks(node, run, peer, items))

    def _on_blocks(self, node: Endpoint, run: SyncRun, peer: int, items: Any) -> None:
        if self._is_sync_stale(node, run):
            return
        applied = 0
        for height, block_hash, commit in items or ():
            if height != node.head + 1:
                break
            info = self.block_info.get(block_hash)
            commit_fits = (commit.height, commit.block_hash) == (height, block_hash)
            if not commit_fits or not self.is_commit_valid(commit) or info is None or not info.valid:
                break  # the runtime refuses the block and stops taking this peer's batch
            self._store(node, height, block_hash, commit)
            node.synced_count += 1
            self.result.synced_blocks += 1
            applied += 1
            self.feed(node, self._head_advanced(node))
            self.feed(node, TxsPending(self._pending(node)))
            if self._is_mid_crash_due(node, "synced", node.synced_count) or self._is_sync_stale(node, run):
                return
        if applied:
            self._sync_fetch(node, run, peer)
        else:
            self._sync_next(node, run)

    # --- crashes --------------------------------------------------------------------

    def _boot(self, node: Endpoint) -> None:
        """A process starts: a new driver, told the head and the WAL records of head + 1."""
        node.driver = driver.new_driver(node.config)
        records = self.get_records(node, node.head + 1)
        for record in records:
            message = record.message
            if isinstance(message, SignedProposal) and message.proposal.block_hash in self.block_info:
                node.blocks.add(message.proposal.block_hash)  # the WAL keeps an own proposal's block
        stored = node.store.get(node.head)
        boot = Boot(node.head, stored.time_ms if stored else 0, stored.commit if stored else None, records)
        self.feed(node, boot)
        self.feed(node, TxsPending(self._pending(node)))
        self._timer(node, SYNC_TICK_MS, SyncTick())

    def _crash(self, node: Endpoint) -> None:
        if not node.up:
            return
        node.up = False
        node.incarnation += 1
        node.inbox.clear()
        node.syncing = None
        node.blocks = set()
        node.commits_owed = set()
        node.trace.append((self.now, "crash", None))

    def _restart(self, node: Endpoint) -> None:
        if node.up:
            return
        node.up = True
        self.result.restarts += 1
        node.trace.append((self.now, "restart", None))
        if not node.adversary.keeps_wal:
            node.wal = []
        self._boot(node)

    def _is_mid_crash_due(self, node: Endpoint, trigger: str, count: int, before_send: bool = False) -> bool:
        """Crash ``node`` now if the schedule says so at this point (before GST only)."""
        pending = self.mid_crashes.get(node.validator)
        if not pending or self.now >= self.schedule.gst_ms:
            return False
        for crash in pending:
            if crash.trigger == trigger and crash.count == count and crash.before_send == before_send:
                pending.remove(crash)
                self._crash(node)
                up = self.now + crash.down_for_ms
                self.last_restart = max(self.last_restart, up)
                self.at(up, self._restart, node)
                return True
        return False

    # --- invariants -----------------------------------------------------------------

    def _check_book(self, node: Endpoint) -> None:
        if not node.honest:
            return
        machine = node.driver.machine
        size = machine.book.get_size()
        self.result.max_book = max(self.result.max_book, size)
        bound = compute_book_bound(self.n, machine.round)
        if size > bound:
            self._violation(node, f"memory: the vote book holds {size} messages at round {machine.round} (bound {bound})")

    def _check_liveness(self) -> None:
        if self.result.safety:
            return
        for node in self.honest:
            missing = [h for h in range(1, self.schedule.heights + 1) if h not in node.store]
            if missing:
                self.result.liveness.append(
                    f"liveness: validator {node.validator} did not decide heights {missing} by {self.now} ms"
                    f" (gst {self.schedule.gst_ms} ms)"
                )
        if self.result.liveness:
            self.result.trace = self._format_trace(self.honest)

    def _violation(self, node: Endpoint, what: str) -> None:
        self.result.safety.append(f"{what} (at {self.now} ms, seen by validator {node.validator})")
        self.result.trace = self._format_trace([node, *[nd for nd in self.honest if nd is not node]][:4])

    def _format_trace(self, nodes: list[Endpoint]) -> list[str]:
        lines = []
        for node in nodes:
            lines.append(f"-- validator {node.validator}{node.tag} ({node.behavior}), last {TRACE_LENGTH} events:")
            lines.extend(f"   {t:>7} ms {d:<7} {describe(x)}" for t, d, x in node.trace)
        return lines


def get_height(message: SignedVote | SignedProposal) -> int:
    return message.vote.height if isinstance(message, SignedVote) else message.proposal.height


def get_signer(message: SignedVote | SignedProposal) -> int:
    return message.vote.validator if isinstance(message, SignedVote) else message.proposal.proposer


def describe(item: Any) -> str:
    """One short line for a trace entry."""
    if isinstance(item, VoteReceived | PersistThenSend | Broadcast | ProposalReceived):
        return f"{type(item).__name__}({describe(item.message)})"
    if isinstance(item, SignedVote):
        v = item.vote
        return f"{v.type} h{v.height} r{v.round} {_short(v.block_hash)} by {v.validator}"
    if isinstance(item, SignedProposal):
        p = item.proposal
        return f"proposal h{p.height} r{p.round} {_short(p.block_hash)} pol {p.pol_round} by {p.proposer}"
    if isinstance(item, CommitCertificate):
        return f"commit h{item.height} r{item.round} {_short(item.block_hash)}"
    if isinstance(item, Decide | CommitSeen):
        return f"{type(item).__name__}({describe(item.commit)})"
    if isinstance(item, HeadAdvanced):
        return f"HeadAdvanced(h{item.height}, {len(item.records)} records of h{item.height + 1})"
    if isinstance(item, Boot):
        return f"Boot(head {item.head}, {len(item.records)} records)"
    return "" if item is None else repr(item)[:120]


def _short(block_hash: bytes | None) -> str:
    return "nil" if block_hash is None else block_hash.hex()[:8]
