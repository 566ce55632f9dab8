"""The driver: when the consensus machine starts a height, when the node syncs, and how
the machine is rebuilt.

The consensus machine (:mod:`node.consensus`) decides one height at a time; something
around it must decide *when* it enters the next height, when the node is behind and
must fetch blocks, and what the machine becomes when blocks arrive by catch-up rather
than by its own decision. That something is this module, and it is pure:
``drive(state, item, now_ms) -> (state, commands)``. The node runtime
(:mod:`node.runtime`) and the simulator run it the same way; they only perform its
commands (network, disk, timers) and report back.

The rules, in the order a reader meets them:

* **Boot.** The machine for the height after the committed head is resumed from that
  height's write-ahead records when there are any (it may already have signed there),
  and otherwise waits for a reason to start.
* **Start a height** when there is work (pending transactions), when a peer has
  already started it, or when the heartbeat interval has passed since the last block;
  otherwise arm the heartbeat. No empty blocks while the alliance is idle.
* **The head advances** (own decision committed, or blocks applied by catch-up): a
  machine already inside the height after the new head is **never replaced** (it may
  hold a lock and signed votes there). A machine left behind is rebuilt for the new
  next height **from that height's write-ahead records**, never fresh from nothing.
* **A failed write-ahead append** rebuilds the machine from the records that did reach
  the disk, so the message that failed is forgotten and never sent later.
* **Sync** when a peer is seen at a height beyond the next one (a signed message or a
  verified certificate from the future), when a decided block could not be had, or on
  the periodic tick while the chain has not moved for ``stall_ms``; one sync at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.blocks import CommitCertificate, SignedVote
from node.consensus import (
    Action,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Event,
    PersistThenSend,
    ProposalReceived,
    StartHeight,
    VoteReceived,
    restore,
    step,
)
from node.messages import SignedProposal

__all__ = [
    "ArmHeartbeat", "Boot", "Command", "CommitSeen", "DecideFailed", "DriverConfig", "DriverInput",
    "DriverState", "HeadAdvanced", "HeartbeatFired", "PeerAt", "StartSync", "SyncFinished", "SyncTick",
    "TxsPending", "WalWriteFailed", "compute_machine_for", "compute_waiting_machine", "drive",
    "is_block_worth_keeping", "is_in_height", "is_start_due", "new_driver",
]


# --- configuration and state ----------------------------------------------------------

SYNC_TICK_MS = 1_000
"""The period of :class:`SyncTick` (the runtime's timer and the simulator's alike)."""
STALL_MS = 3_000
"""With a height started and no new block for this long, the tick syncs anyway."""
MAX_ROUNDS_AHEAD_FOR_BLOCKS = 8
"""A proposal's block is kept only for rounds up to this far beyond the machine's own:
a proposer re-sends its proposal every ``rebroadcast_ms``, so nothing is lost, and a
Byzantine proposer cannot fill memory with blocks for rounds nobody will reach."""



@dataclass(frozen=True, slots=True)
class DriverConfig:
    """The node settings the driver reads."""

    consensus: ConsensusConfig
    """The machine's configuration (at every height, unless ``config_for`` is given)."""
    config_for: Callable[[int], ConsensusConfig] | None = None
    """The machine's configuration at a height: its validator set and this validator's
    place in it (DESIGN §12, known from the chain up to head + 2), its timeouts."""
    heartbeat_ms: int = 10_000
    """Start an empty height when no block was committed for this long."""
    stall_ms: int = STALL_MS
    """On a sync tick, sync anyway when the head has not moved for this long."""


@dataclass(slots=True)
class DriverState:
    """What the driver knows: the machine, the committed head, peers, pending work."""

    config: DriverConfig
    machine: ConsensusState
    head: int = 0
    """Height of the newest committed block (0: only genesis)."""
    head_time_ms: int = 0
    """``time_ms`` of the head block (0 at genesis)."""
    head_commit: CommitCertificate | None = None
    """The head block's certificate (``last_commit`` of the next height)."""
    head_seen_ms: int = 0
    """Driver time when the head last advanced (for the stall rule)."""
    pending_txs: int = 0
    """Transactions waiting in the mempool."""
    peer_heights: dict[int, int] = field(default_factory=dict)
    """Highest height each peer is known to work on (monotone)."""
    heartbeat_armed: bool = False
    syncing: bool = False


# --- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Boot:
    """The node (re)started with ``head`` committed; ``records`` are the WAL records of head + 1."""

    head: int
    head_time_ms: int
    head_commit: CommitCertificate | None
    records: tuple[PersistThenSend, ...]


@dataclass(frozen=True, slots=True)
class HeadAdvanced:
    """The chain now ends at ``height`` (own decision or catch-up); ``records`` are the WAL
    records of ``height + 1`` as they are on disk at this moment."""

    height: int
    time_ms: int
    commit: CommitCertificate
    records: tuple[PersistThenSend, ...]


@dataclass(frozen=True, slots=True)
class PeerAt:
    """Validator ``validator`` is known to work on ``height`` (e.g. a status reply: head + 1)."""

    validator: int
    height: int


@dataclass(frozen=True, slots=True)
class CommitSeen:
    """A commit certificate the node verified (from a peer's gossip)."""

    sender: int
    commit: CommitCertificate


@dataclass(frozen=True, slots=True)
class TxsPending:
    """The mempool now holds ``count`` transactions."""

    count: int


@dataclass(frozen=True, slots=True)
class HeartbeatFired:
    """The timer armed by :class:`ArmHeartbeat` expired."""


@dataclass(frozen=True, slots=True)
class SyncTick:
    """The periodic sync timer."""


@dataclass(frozen=True, slots=True)
class SyncFinished:
    """A sync started by :class:`StartSync` is over (whatever it applied was reported)."""


@dataclass(frozen=True, slots=True)
class DecideFailed:
    """The machine decided ``height`` but the node could not get or commit the block."""

    height: int


@dataclass(frozen=True, slots=True)
class WalWriteFailed:
    """Persisting a signed message failed; ``records`` are the WAL records of the machine's
    height that are on disk. The actions after the failed one were not executed."""

    records: tuple[PersistThenSend, ...]


DriverInput = (
    Boot | HeadAdvanced | PeerAt | CommitSeen | TxsPending | HeartbeatFired | SyncTick | SyncFinished
    | DecideFailed | WalWriteFailed
)


# --- commands (beside the machine's own actions) --------------------------------------


@dataclass(frozen=True, slots=True)
class ArmHeartbeat:
    """Deliver :class:`HeartbeatFired` after ``delay_ms``."""

    delay_ms: int


@dataclass(frozen=True, slots=True)
class StartSync:
    """Fetch blocks with their certificates from peers beyond the head, report each applied
    block as :class:`HeadAdvanced`, then :class:`SyncFinished`."""


Command = Action | ArmHeartbeat | StartSync


# --- entry points ---------------------------------------------------------------------


def get_consensus_config(d: DriverState, height: int) -> ConsensusConfig:
    """The machine's configuration at ``height``."""
    return d.config.consensus if d.config.config_for is None else d.config.config_for(height)


def new_driver(config: DriverConfig) -> DriverState:
    """A driver before :class:`Boot`."""
    return DriverState(config, compute_waiting_machine(config.consensus, 0, None))


def drive(d: DriverState, item: Event | DriverInput, now_ms: int) -> tuple[DriverState, list[Command]]:
    """Apply one input; return the successor state and the commands the node must perform."""
    out: list[Command] = []
    if isinstance(item, Boot):
        on_boot(d, item, now_ms, out)
    elif isinstance(item, HeadAdvanced):
        on_head_advanced(d, item, now_ms, out)
    elif isinstance(item, PeerAt):
        on_peer_at(d, item.validator, item.height, now_ms, out)
    elif isinstance(item, CommitSeen):
        on_commit_seen(d, item, now_ms, out)
    elif isinstance(item, TxsPending):
        d.pending_txs = item.count
        start_height_if_due(d, now_ms, out)
    elif isinstance(item, HeartbeatFired):
        d.heartbeat_armed = False
        start_height_if_due(d, now_ms, out)
    elif isinstance(item, SyncTick):
        on_sync_tick(d, now_ms, out)
    elif isinstance(item, SyncFinished):
        on_sync_finished(d, now_ms, out)
    elif isinstance(item, DecideFailed):
        request_sync(d, out)
    elif isinstance(item, WalWriteFailed):
        on_wal_write_failed(d, item, out)
    else:
        on_machine_event(d, item, now_ms, out)
    return d, out


# --- handlers -------------------------------------------------------------------------


def on_boot(d: DriverState, boot: Boot, now_ms: int, out: list[Command]) -> None:
    """Resume the height after the head from its records, or wait for a reason to start."""
    d.head, d.head_time_ms, d.head_commit, d.head_seen_ms = boot.head, boot.head_time_ms, boot.head_commit, now_ms
    rebuild_machine(d, boot.records, out)
    start_height_if_due(d, now_ms, out)


def on_head_advanced(d: DriverState, advanced: HeadAdvanced, now_ms: int, out: list[Command]) -> None:
    """The head moved: keep a machine already in the next height, rebuild one left behind."""
    if advanced.height <= d.head:
        return
    d.head, d.head_time_ms, d.head_commit = advanced.height, advanced.time_ms, advanced.commit
    d.head_seen_ms = now_ms
    if not is_in_height(d.machine, d.head + 1):
        rebuild_machine(d, advanced.records, out)
    start_height_if_due(d, now_ms, out)


def on_peer_at(d: DriverState, validator: int, height: int, now_ms: int, out: list[Command]) -> None:
    """Remember how far a peer is; a peer beyond the next height means we are behind."""
    if height <= d.peer_heights.get(validator, 0):
        return
    d.peer_heights[validator] = height
    if height > d.head + 1:
        request_sync(d, out)
    elif height == d.head + 1:
        start_height_if_due(d, now_ms, out)


def on_commit_seen(d: DriverState, seen: CommitSeen, now_ms: int, out: list[Command]) -> None:
    """A certificate for the machine's height decides it; one further ahead calls for sync."""
    commit = seen.commit
    if commit.height <= d.head:
        return
    if is_in_height(d.machine, commit.height):
        if d.machine.decided is None:
            step_machine(d, CommitReceived(commit), out)
        return
    on_peer_at(d, seen.sender, commit.height + 1, now_ms, out)


def on_sync_tick(d: DriverState, now_ms: int, out: list[Command]) -> None:
    """Sync when a peer is ahead, or when a started height has not ended for ``stall_ms``.

    Not while idle (no height started): a sync's status replies report peers' heads as
    :class:`PeerAt` head + 1, which counts as "a peer started the next height", so a
    stall sync every tick would start an empty height every ``stall_ms`` instead of
    every ``heartbeat_ms``.
    """
    behind = any(h > d.head + 1 for h in d.peer_heights.values())
    stalled = is_in_height(d.machine, d.head + 1) and now_ms - d.head_seen_ms >= d.config.stall_ms
    if behind or stalled:
        request_sync(d, out)


def on_sync_finished(d: DriverState, now_ms: int, out: list[Command]) -> None:
    """The sync is over. Whatever it applied was reported block by block as
    :class:`HeadAdvanced`; the machine is left as those made it (never replaced here)."""
    d.syncing = False


def on_wal_write_failed(d: DriverState, failed: WalWriteFailed, out: list[Command]) -> None:
    """Forget whatever the machine signed but could not persist: rebuild it from the disk."""
    height = d.machine.height
    if height == 0 or height != d.head + 1:
        d.machine = compute_waiting_machine(get_consensus_config(d, d.head + 1), d.head, d.head_commit)
        return
    d.machine, actions = compute_machine_for(get_consensus_config(d, height), height, d.head_commit, failed.records)
    out.extend(actions)


def on_machine_event(d: DriverState, event: Event, now_ms: int, out: list[Command]) -> None:
    """A consensus event: note how far its signer is, then let the machine step."""
    if isinstance(event, VoteReceived):
        on_peer_at(d, event.message.vote.validator, event.message.vote.height, now_ms, out)
    elif isinstance(event, ProposalReceived):
        on_peer_at(d, event.message.proposal.proposer, event.message.proposal.height, now_ms, out)
    if isinstance(event, StartHeight) and event.height != d.head + 1:
        return  # only the driver starts heights, and only the one after the head
    step_machine(d, event, out)


# --- rules ----------------------------------------------------------------------------


def is_in_height(machine: ConsensusState, height: int) -> bool:
    """Whether the machine has entered ``height`` (it may have signed there)."""
    return machine.height == height


def is_block_worth_keeping(machine: ConsensusState, head: int, height: int, round_: int) -> bool:
    """Whether a (proposer-checked) proposal's block is kept: only for the height after
    the head, and only for rounds the machine may still reach soon."""
    machine_round = machine.round if machine.height == height else 0
    return height == head + 1 and round_ <= machine_round + MAX_ROUNDS_AHEAD_FOR_BLOCKS


def is_start_due(d: DriverState, now_ms: int) -> bool:
    """Work is pending, a peer started the next height, or the heartbeat interval passed."""
    next_height = d.head + 1
    peer_started = any(h >= next_height for h in d.peer_heights.values())
    idle_for = now_ms - d.head_time_ms if d.head else d.config.heartbeat_ms
    return d.pending_txs > 0 or peer_started or idle_for >= d.config.heartbeat_ms


def start_height_if_due(d: DriverState, now_ms: int, out: list[Command]) -> None:
    """Enter head + 1 now if there is a reason to, otherwise arm the heartbeat."""
    if is_in_height(d.machine, d.head + 1):
        return
    if is_start_due(d, now_ms):
        step_machine(d, StartHeight(d.head + 1, d.head_commit, get_consensus_config(d, d.head + 1)), out)
        return
    if not d.heartbeat_armed:
        d.heartbeat_armed = True
        idle_for = now_ms - d.head_time_ms
        out.append(ArmHeartbeat(max(50, d.config.heartbeat_ms - idle_for)))


def rebuild_machine(d: DriverState, records: tuple[PersistThenSend, ...], out: list[Command]) -> None:
    """The machine for head + 1: resumed from its records if it signed anything there,
    else one waiting at the head (it buffers next-height messages until started).

    A machine that just decided the head is already waiting; one left behind hands on
    the next-height messages it buffered (peers' signed messages, still good).
    """
    old = d.machine
    if not records and old.height == d.head and old.decided is not None:
        return
    carried = [m for m in old.future if get_message_height(m) == d.head + 1]
    if records:
        d.machine, actions = compute_machine_for(get_consensus_config(d, d.head + 1), d.head + 1, d.head_commit, records)
        out.extend(actions)
        for message in carried:
            step_machine(d, VoteReceived(message) if isinstance(message, SignedVote) else ProposalReceived(message), out)
    else:
        d.machine = compute_waiting_machine(get_consensus_config(d, d.head + 1), d.head, d.head_commit)
        d.machine.future.extend(carried)


def compute_machine_for(
    config: ConsensusConfig,
    height: int,
    last_commit: CommitCertificate | None,
    records: tuple[PersistThenSend, ...],
) -> tuple[ConsensusState, list[Action]]:
    """The machine inside ``height``, rebuilt from exactly what it persisted there."""
    return restore(config, height, last_commit, list(records))


def compute_waiting_machine(
    config: ConsensusConfig, head: int, head_commit: CommitCertificate | None
) -> ConsensusState:
    """A machine that has finished ``head`` and waits to be started at head + 1."""
    machine = ConsensusState(config, height=head, last_commit=None)
    if head_commit is not None:
        machine.decided = head_commit.block_hash  # height 0 buffers without it
    return machine


def get_message_height(message: SignedVote | SignedProposal) -> int:
    return message.vote.height if isinstance(message, SignedVote) else message.proposal.height


def request_sync(d: DriverState, out: list[Command]) -> None:
    """One sync at a time."""
    if not d.syncing:
        d.syncing = True
        out.append(StartSync())


def step_machine(d: DriverState, event: Event, out: list[Command]) -> None:
    d.machine, actions = step(d.machine, event)
    out.extend(actions)


def compute_commit_recipients(commit: CommitCertificate, n: int, own: int) -> frozenset[int]:
    """Whom a validator sends its certificate when it decides: the validators whose
    precommit the certificate lacks.

    Each one it holds went to every validator, so its signers are at the precommit step
    with the same precommits on their way; sending them 2f+1 more signatures is the
    bulk of a height's bytes at 58 zones (57 certificates of 39 signatures per
    validator). A signer that still falls behind re-sends a vote for the decided height,
    which is answered with the certificate (:func:`is_commit_owed`), or syncs.
    """
    return frozenset(range(n)) - {entry.validator for entry in commit.signatures} - {own}


def is_commit_owed(vote_height: int, head: int) -> bool:
    """A peer's vote for the height this validator last decided: the peer has not decided
    it, so it is sent the head's certificate (once per peer and height)."""
    return vote_height == head > 0
