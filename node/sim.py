"""Deterministic consensus simulator: n validators, one process, a virtual clock.

Each validator runs the pure machine of :mod:`node.consensus` behind a small driver
that obeys its actions (persist-then-send into a modelled write-ahead log, timers on a
skewed virtual clock, block building and validity as a predicate). The network delays,
reorders, duplicates and drops messages and partitions the validators until the
schedule's GST (:mod:`node.sim_faults`). Signatures are real Ed25519, verified once per
distinct message per schedule. After a schedule the invariants are checked:

* agreement: no two honest validators decide different blocks at one height;
* validity: every decided block is valid and carries a valid commit certificate;
* no honest double-sign: no honest key signs two different votes (or proposals) for
  one height, round and type;
* liveness: every honest validator decides every height within the bound after GST.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ledger.blocks import CommitCertificate, Proposal, SignedVote, Vote, validate_commit
from ledger.encoding import H, cb
from ledger.errors import LedgerError
from ledger.keys import SigningKey
from node.consensus import (
    Action,
    BlockReady,
    BlockValidity,
    Broadcast,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Decide,
    Event,
    PersistThenSend,
    ProposalReceived,
    ReportEvidence,
    RequestBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    ValidateBlock,
    VoteReceived,
    new_state,
    restore,
    step,
)
from node.messages import ConsensusMessage, SignedProposal, sign_proposal
from node.sim_faults import Schedule, SimParams, generate_schedule

CHAIN_ID = "zoneledger-sim"
LIVENESS_BOUND_MS_PER_HEIGHT = 30_000
"""After GST every honest validator must decide each height within this much virtual time."""
TRACE_LENGTH = 30
COMMIT_REPLY_COOLDOWN_MS = 500
IN_FLIGHT_MS = 3_000
"""Longest a message sent before a crash may still be travelling (two hops of the slowest delay)."""


@dataclass(slots=True)
class Node:
    """One endpoint: a validator's driver and machine (a Byzantine twin is a second endpoint)."""

    ident: int
    validator: int
    tag: str
    """"" for ordinary nodes, "A"/"B" for twins."""
    behavior: str
    """"honest" or a Byzantine behaviour."""
    config: ConsensusConfig
    state: ConsensusState
    rate: float
    up: bool = True
    incarnation: int = 0
    wal: list[PersistThenSend] = field(default_factory=list)
    store: dict[int, tuple[bytes, CommitCertificate]] = field(default_factory=dict)
    replied: dict[tuple[int, int], int] = field(default_factory=dict)
    trace: deque[tuple[int, str, Any]] = field(default_factory=lambda: deque(maxlen=TRACE_LENGTH))


@dataclass(slots=True)
class ScheduleResult:
    """What one schedule produced."""

    schedule: Schedule
    decided_heights: int = 0
    messages: int = 0
    events: int = 0
    evidence: int = 0
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
        self.rng = random.Random(schedule.seed ^ 0x5EED)
        self.keys = get_keys(schedule.n)
        self.validators = tuple(k.public for k in self.keys)
        self.now = 0
        self.queue: list[tuple[int, int, str, Any]] = []
        self.seq = 0
        self.verified: dict[ConsensusMessage, bool] = {}
        self.invalid_blocks: set[bytes] = set()
        self.signed: dict[tuple[int, int, int, str], ConsensusMessage] = {}
        self.decisions: dict[int, bytes] = {}
        self.first_decided_ms: dict[int, int] = {}
        self.result = ScheduleResult(schedule)
        self.nodes: list[Node] = []
        for v in range(schedule.n):
            behavior = schedule.behaviors.get(v, "honest")
            if behavior == "silent":
                continue
            tags = ("A", "B") if behavior == "twins" else ("",)
            for tag in tags:
                mutations = params.mutations if behavior == "honest" else frozenset()
                config = ConsensusConfig(CHAIN_ID, self.validators, v, self.keys[v], mutations=mutations)
                node = Node(len(self.nodes), v, tag, behavior, config, new_state(config), schedule.clock_rate[v])
                self.nodes.append(node)
        self.honest = [nd for nd in self.nodes if nd.behavior == "honest"]

    # --- the event loop -------------------------------------------------------------

    def run(self) -> ScheduleResult:
        for node in self.nodes:
            self._feed(node, StartHeight(1, None))
        for crash in self.schedule.crashes:
            for node in self._endpoints(crash.validator):
                self._push(crash.down_ms, "crash", node.ident)
                self._push(crash.up_ms, "restart", node.ident)
        deadline = self.schedule.gst_ms + LIVENESS_BOUND_MS_PER_HEIGHT * self.schedule.heights
        while self.queue and not self.result.safety:
            t, _, kind, payload = heapq.heappop(self.queue)
            if t > deadline:
                break
            self.now = t
            self.result.events += 1
            if kind == "deliver":
                self._deliver(*payload)
            elif kind == "timer":
                ident, incarnation, event = payload
                node = self.nodes[ident]
                if node.up and node.incarnation == incarnation:
                    self._feed(node, event)
            elif kind == "crash":
                self._crash(self.nodes[payload])
            else:
                self._restart(self.nodes[payload])
            if all(self.schedule.heights in nd.store for nd in self.honest) and self.now >= self._last_restart():
                break
        self.result.end_ms = self.now
        self._check_liveness()
        return self.result

    def _last_restart(self) -> int:
        return max((c.up_ms for c in self.schedule.crashes), default=0)

    def _push(self, at: int, kind: str, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, payload))

    def _endpoints(self, validator: int) -> list[Node]:
        return [nd for nd in self.nodes if nd.validator == validator]

    # --- the driver: obey the machine's actions ------------------------------------

    def _feed(self, node: Node, event: Event) -> None:
        self._run(node, [], deque([event]))

    def _run(self, node: Node, actions: list[Action], pending: deque[Event] | None = None) -> None:
        pending = deque() if pending is None else pending
        self._obey(node, actions, pending)
        while pending:
            ev = pending.popleft()
            node.trace.append((self.now, "in", ev))
            node.state, actions = step(node.state, ev)
            self._obey(node, actions, pending)

    def _obey(self, node: Node, actions: list[Action], pending: deque[Event]) -> None:
        for action in actions:
            if isinstance(action, ScheduleTimeout):
                delay = int(action.delay_ms * node.rate)
                event = TimeoutFired(action.kind, action.height, action.round)
                self._push(self.now + delay, "timer", (node.ident, node.incarnation, event))
                continue
            node.trace.append((self.now, "out", action))
            if isinstance(action, PersistThenSend):
                node.wal.append(action)  # durable before anything leaves the node
                self._send(node, action.message)
            elif isinstance(action, Broadcast):
                self._send(node, action.message)

            elif isinstance(action, RequestBlock):
                pending.append(BlockReady(action.height, action.round, self._build_block(node, action)))
            elif isinstance(action, ValidateBlock):
                valid = node.behavior == "invalid" or action.block_hash not in self.invalid_blocks
                pending.append(BlockValidity(action.height, action.block_hash, valid))
            elif isinstance(action, Decide):
                self._on_decide(node, action)
                if action.height < self.schedule.heights:
                    pending.append(StartHeight(action.height + 1, action.commit))
            elif isinstance(action, ReportEvidence):
                self.result.evidence += 1

    def _build_block(self, node: Node, request: RequestBlock) -> bytes:
        block = H(cb(["sim block", request.height, request.round, node.validator, node.tag, self.schedule.seed]))
        if node.behavior == "invalid":
            self.invalid_blocks.add(block)
        return block

    def _on_decide(self, node: Node, decide: Decide) -> None:
        node.store[decide.height] = (decide.block_hash, decide.commit)
        node.wal = []  # the new height starts a fresh log segment
        if node.behavior != "honest":
            return
        if not self._is_commit_valid(decide.commit, decide.height, decide.block_hash):
            self._violation(node, f"validity: height {decide.height} decided with an invalid commit certificate")
        if decide.block_hash in self.invalid_blocks:
            self._violation(node, f"validity: height {decide.height} decided an invalid block")
        earlier = self.decisions.setdefault(decide.height, decide.block_hash)
        if earlier != decide.block_hash:
            self._violation(
                node, f"agreement: height {decide.height} decided {decide.block_hash.hex()[:12]} and {earlier.hex()[:12]}"
            )
        if decide.height not in self.first_decided_ms:
            self.first_decided_ms[decide.height] = self.now
            self.result.decided_heights = len(self.first_decided_ms)
            if self._down_count() > self._f() and self.now > self._outage_start() + IN_FLIGHT_MS:
                self.result.halt_new_heights += 1
            if self.now >= self._last_restart():
                self.result.resumed_heights += 1

    def _f(self) -> int:
        return (self.schedule.n - 1) // 3

    def _down_count(self) -> int:
        return len({nd.validator for nd in self.nodes if not nd.up})

    def _outage_start(self) -> int:
        return max((c.down_ms for c in self.schedule.crashes), default=0)

    def _is_commit_valid(self, commit: CommitCertificate, height: int, block_hash: bytes) -> bool:
        ok = self.verified.get(commit)
        if ok is None:
            try:
                validate_commit(commit, chain_id=CHAIN_ID, validators=self.validators, height=height, block_hash=block_hash)
                ok = True
            except LedgerError:
                ok = False
            self.verified[commit] = ok
        return ok

    # --- the network ----------------------------------------------------------------

    def _send(self, node: Node, message: ConsensusMessage) -> None:
        if not node.up:
            return
        if node.behavior == "honest":
            self._check_double_sign(node, message)
        if node.behavior == "double_vote" and not isinstance(message, CommitCertificate):
            self._send_split(node, message, self._conflicting(node, message))
            return
        for dst in self.nodes:
            self._route(node, dst, message)
        if node.behavior == "forger" and not isinstance(message, CommitCertificate):
            forged = self._forge(message)
            for dst in self.nodes:
                self._route(node, dst, forged)

    def _send_split(self, node: Node, first: ConsensusMessage, second: ConsensusMessage) -> None:
        for dst in self.nodes:
            self._route(node, dst, first if self.rng.random() < 0.5 else second)

    def _conflicting(self, node: Node, message: SignedVote | SignedProposal) -> ConsensusMessage:
        other = H(cb(["conflict", self.rng.getrandbits(64)]))
        key = self.keys[node.validator]
        if isinstance(message, SignedVote):
            v = message.vote
            return Vote(v.chain_id, v.type, v.height, v.round, None if v.block_hash else other, v.validator).sign(key)
        p = message.proposal
        return sign_proposal(Proposal(p.chain_id, p.height, p.round, other, p.pol_round, p.proposer), key)

    def _forge(self, message: SignedVote | SignedProposal) -> ConsensusMessage:
        """A message claiming another validator, signed with the forger's own key."""
        victim = self.rng.randrange(self.schedule.n)
        bogus = H(cb(["forged", self.rng.getrandbits(64)]))
        key = self.keys[next(v for v in self.schedule.behaviors if self.schedule.behaviors[v] == "forger")]
        if isinstance(message, SignedVote):
            v = message.vote
            return Vote(v.chain_id, "precommit", v.height, v.round, bogus, victim).sign(key)
        p = message.proposal
        return sign_proposal(Proposal(p.chain_id, p.height, p.round, bogus, -1, victim), key)

    def _route(self, src: Node, dst: Node, message: ConsensusMessage) -> None:
        if dst is src or (dst.validator == src.validator and src.tag == "") or not self._twins_route(src, dst):
            return
        s, rng = self.schedule, self.rng
        if self.now < s.gst_ms:
            for p in s.partitions:
                if p.start_ms <= self.now < p.end_ms and (src.validator in p.group) != (dst.validator in p.group):
                    return
            if rng.random() < s.drop:
                return
        copies = 2 if rng.random() < s.duplicate else 1
        for _ in range(copies):
            delay = rng.randint(*s.delay_ms)
            if rng.random() < s.reorder:
                delay += rng.randint(0, 3 * s.delay_ms[1])
            self.result.messages += 1
            self._push(self.now + delay, "deliver", (src.ident, dst.ident, message))

    def _twins_route(self, src: Node, dst: Node) -> bool:
        """Twin A talks only to world A (and other A twins); twin B to world B."""
        for a, b in ((src, dst), (dst, src)):
            if a.tag and not b.tag and b.behavior == "honest":
                return (b.validator in self.schedule.world_b) == (a.tag == "B")
        return not (src.tag and dst.tag and src.tag != dst.tag)

    def _deliver(self, src_ident: int, dst_ident: int, message: ConsensusMessage) -> None:
        node = self.nodes[dst_ident]
        if not node.up:
            return
        if isinstance(message, CommitCertificate):
            machine = node.state
            current = message.height == machine.height and machine.decided is None
            if current and self._is_commit_valid(message, message.height, message.block_hash):
                self._feed(node, CommitReceived(message))
            return
        if not self._is_signature_valid(message):
            return  # the driver drops forgeries before the machine sees them
        height = message.vote.height if isinstance(message, SignedVote) else message.proposal.height
        if height in node.store:
            self._reply_commit(node, self.nodes[src_ident], height)
            return
        event: Event = VoteReceived(message) if isinstance(message, SignedVote) else ProposalReceived(message)
        self._feed(node, event)

    def _reply_commit(self, node: Node, peer: Node, height: int) -> None:
        """Catch-up (the node's sync in miniature): tell a lagging peer how ``height`` ended."""
        last = node.replied.get((peer.ident, height), -COMMIT_REPLY_COOLDOWN_MS)
        if self.now - last >= COMMIT_REPLY_COOLDOWN_MS:
            node.replied[(peer.ident, height)] = self.now
            self._route(node, peer, node.store[height][1])

    def _is_signature_valid(self, message: SignedVote | SignedProposal) -> bool:
        ok = self.verified.get(message)
        if ok is None:
            try:
                message.verify(self.validators)
                ok = True
            except LedgerError:
                ok = False
            self.verified[message] = ok
        return ok

    # --- crashes --------------------------------------------------------------------

    def _crash(self, node: Node) -> None:
        node.up = False
        node.incarnation += 1
        node.trace.append((self.now, "crash", None))

    def _restart(self, node: Node) -> None:
        if node.up:
            return
        node.up = True
        node.trace.append((self.now, "restart", None))
        height = max(node.store, default=0) + 1
        if height > self.schedule.heights:
            return
        last_commit = node.store[height - 1][1] if height > 1 else None
        records = [] if node.behavior == "amnesia" else list(node.wal)
        node.state, actions = restore(node.config, height, last_commit, records)
        self._run(node, actions)

    # --- invariants -----------------------------------------------------------------

    def _check_double_sign(self, node: Node, message: ConsensusMessage) -> None:
        if isinstance(message, SignedVote):
            v = message.vote
            key = (v.validator, v.height, v.round, v.type)
        elif isinstance(message, SignedProposal):
            p = message.proposal
            key = (p.proposer, p.height, p.round, "proposal")
        else:
            return
        first = self.signed.setdefault(key, message)
        if first != message:
            self._violation(node, f"double-sign: validator {key[0]} signed two {key[3]}s at height {key[1]} round {key[2]}")

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

    def _violation(self, node: Node, what: str) -> None:
        self.result.safety.append(f"{what} (at {self.now} ms, seen by validator {node.validator})")
        self.result.trace = self._format_trace([node, *[nd for nd in self.honest if nd is not node]][:4])

    def _format_trace(self, nodes: list[Node]) -> list[str]:
        lines = []
        for node in nodes:
            lines.append(f"-- validator {node.validator}{node.tag} ({node.behavior}), last {TRACE_LENGTH} events:")
            lines.extend(f"   {t:>7} ms {d:<7} {describe(x)}" for t, d, x in node.trace)
        return lines


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
    if isinstance(item, CommitReceived | Decide):
        return f"{type(item).__name__}({describe(item.commit)})"
    return "" if item is None else repr(item)[:120]


def _short(block_hash: bytes | None) -> str:
    return "nil" if block_hash is None else block_hash.hex()[:8]


# --- running many schedules -----------------------------------------------------------


def compute_schedule_seeds(seed: int, count: int) -> list[int]:
    """The schedule seeds of a run: one ``random.Random`` per schedule, derived from the master."""
    master = random.Random(seed)
    return [master.getrandbits(48) for _ in range(count)]


def run_schedule(schedule_seed: int, params: SimParams) -> ScheduleResult:
    return Simulation(generate_schedule(schedule_seed, params), params).run()


@dataclass(slots=True)
class RunSummary:
    """Totals of a run, and the first failures."""

    schedules: int = 0
    decided_heights: int = 0
    safety_violations: int = 0
    liveness_failures: int = 0
    messages: int = 0
    seconds: float = 0.0
    halt_new_heights: int = 0
    resumed_heights: int = 0
    failures: list[ScheduleResult] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"schedules: {self.schedules}, decided heights: {self.decided_heights}, "
            f"safety violations: {self.safety_violations}, liveness failures: {self.liveness_failures}"
        )


def run_many(seed: int, count: int, params: SimParams, stop_on_failure: bool = False) -> RunSummary:
    summary = RunSummary()
    started = time.perf_counter()
    for schedule_seed in compute_schedule_seeds(seed, count):
        result = run_schedule(schedule_seed, params)
        summary.schedules += 1
        summary.decided_heights += result.decided_heights
        summary.messages += result.messages
        summary.halt_new_heights += result.halt_new_heights
        summary.resumed_heights += result.resumed_heights
        summary.safety_violations += bool(result.safety)
        summary.liveness_failures += bool(result.liveness)
        if not result.ok:
            summary.failures.append(result)
            if stop_on_failure:
                break
    summary.seconds = time.perf_counter() - started
    return summary
