"""Events the consensus machine takes and actions it returns (see :mod:`node.consensus`).

Plain frozen records: the driver (the node runtime or the simulator) builds events and
obeys actions; only :func:`node.consensus.step` gives them meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ledger.blocks import CommitCertificate, SignedVote
from node.messages import ConsensusMessage, SignedProposal
from node.votes import Evidence

if TYPE_CHECKING:
    from node.consensus import ConsensusConfig

TimeoutKind = Literal["propose", "prevote", "precommit", "rebroadcast"]


@dataclass(frozen=True, slots=True)
class LockRecord:
    """The lock and valid value at the moment a message was signed (persisted with it)."""

    locked_round: int
    locked_value: bytes | None
    valid_round: int
    valid_value: bytes | None
    pol: tuple[SignedVote, ...] = ()
    """The 2f+1 prevotes for ``valid_value`` at ``valid_round`` (re-sent with a re-proposal)."""


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartHeight:
    """Start ``height`` in round 0 (after deciding height - 1, or at boot)."""

    height: int
    last_commit: CommitCertificate | None
    config: ConsensusConfig | None = None
    """The configuration of ``height`` when it differs from the last one (a change of
    the validator set, DESIGN §12, or of the consensus settings); ``None``: unchanged."""


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    """A proposal whose signature the driver verified."""

    message: SignedProposal


@dataclass(frozen=True, slots=True)
class VoteReceived:
    """A vote whose signature the driver verified."""

    message: SignedVote


@dataclass(frozen=True, slots=True)
class CommitReceived:
    """A commit certificate the driver checked with ``validate_commit``."""

    commit: CommitCertificate


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A timeout scheduled by :class:`ScheduleTimeout` expired."""

    kind: TimeoutKind
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class BlockValidity:
    """The driver's answer to :class:`ValidateBlock`."""

    height: int
    block_hash: bytes
    valid: bool


@dataclass(frozen=True, slots=True)
class BlockReady:
    """The driver's answer to :class:`RequestBlock`: a valid block it built."""

    height: int
    round: int
    block_hash: bytes


Event = StartHeight | ProposalReceived | VoteReceived | CommitReceived | TimeoutFired | BlockValidity | BlockReady


# --- actions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersistThenSend:
    """Write ``message`` and ``lock`` durably (fsync), then broadcast ``message``."""

    message: SignedVote | SignedProposal
    lock: LockRecord


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send an already persisted message (or a commit certificate) to every peer, or only
    to the validators ``to`` names."""

    message: ConsensusMessage
    to: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Deliver ``TimeoutFired(kind, height, round)`` after ``delay_ms``."""

    kind: TimeoutKind
    height: int
    round: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class RequestBlock:
    """Build a block for (height, round) and answer with :class:`BlockReady`."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValidateBlock:
    """Fetch and execute ``block_hash``; answer with :class:`BlockValidity`."""

    height: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class Decide:
    """``block_hash`` is final at ``height``; ``commit`` proves it."""

    height: int
    block_hash: bytes
    commit: CommitCertificate


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """A validator equivocated."""

    evidence: Evidence


Action = PersistThenSend | Broadcast | ScheduleTimeout | RequestBlock | ValidateBlock | Decide | ReportEvidence


