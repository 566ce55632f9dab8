"""The consensus state machine: Tendermint (Buchman, Kwon, Milosevic 2018, Algorithm 1).

``step(state, event) -> (state, actions)`` is the whole interface. The machine opens
no socket, reads no clock, touches no disk and draws no random number: time arrives as
:class:`TimeoutFired`, blocks and their validity come from the driver
(:class:`RequestBlock`/:class:`BlockReady`, :class:`ValidateBlock`/:class:`BlockValidity`),
and every message it signs leaves as :class:`PersistThenSend`, which the driver must
make durable before sending. :func:`restore` rebuilds the machine from those records
after a crash, so it never signs two different votes for one height, round and type.

Values are block hashes. Each upon-clause of Algorithm 1 is one ``on_`` function with
its line numbers. Two deliberate extensions: a precommit quorum (or a verified commit
certificate) decides without the proposal, since it proves f+1 honest validators found
the block valid (the driver fetches the block); and a machine that is stuck in a round
re-broadcasts its latest messages every ``rebroadcast_ms``.

``step`` updates ``state`` in place and returns it; callers treat the argument as
consumed (``copy.deepcopy`` it first to keep the old one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.blocks import (
    PRECOMMIT,
    PREVOTE,
    CommitCertificate,
    Proposal,
    SignedVote,
    Vote,
    build_commit,
    compute_max_faulty,
    compute_proposer,
    compute_quorum,
)
from ledger.keys import SigningKey
from node.events import (
    Action,
    BlockReady,
    BlockValidity,
    Broadcast,
    CommitReceived,
    Decide,
    Event,
    LockRecord,
    PersistThenSend,
    ProposalReceived,
    ReportEvidence,
    RequestBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    TimeoutKind,
    ValidateBlock,
    VoteReceived,
)
from node.messages import ConsensusMessage, SignedProposal, sign_proposal
from node.votes import AddResult, VoteBook

__all__ = [
    "Action", "BlockReady", "BlockValidity", "Broadcast", "CommitReceived", "ConsensusConfig",
    "ConsensusState", "Decide", "Event", "LockRecord", "PRECOMMIT_STEP", "PREVOTE_STEP",
    "PROPOSE_STEP", "PersistThenSend", "ProposalReceived", "ReportEvidence", "RequestBlock",
    "ScheduleTimeout", "StartHeight", "TimeoutFired", "TimeoutKind", "ValidateBlock", "VoteReceived",
    "compute_timeout", "new_state", "restore", "step",
]

PROPOSE_STEP, PREVOTE_STEP, PRECOMMIT_STEP = 0, 1, 2
MAX_REBROADCAST_DOUBLINGS = 3
"""A stalled round re-broadcasts after 1, 2, 4, then every 8 times ``rebroadcast_ms``."""


# --- configuration and state ----------------------------------------------------------


NOT_A_MEMBER = -1
"""``ConsensusConfig.index`` of a validator outside the height's set."""


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    """What a validator knows before consensus starts (genesis plus its own key)."""

    chain_id: str
    """The genesis chain id."""
    validators: tuple[bytes, ...]
    """Validator public keys in index order."""
    index: int
    """This validator's index in ``validators``; ``NOT_A_MEMBER`` (-1) at a height whose
    set does not hold its key (a zone that has not joined yet, or has left): the machine
    then follows the height, counting the others' votes, but signs nothing."""
    key: SigningKey
    """This validator's signing key."""
    timeout_propose_ms: int = 1000
    """Base propose timeout; ``ConsensusParams.timeout_propose_ms``."""
    timeout_delta_ms: int = 500
    """Per-round growth of every timeout, and the base prevote/precommit timeout."""
    rebroadcast_ms: int = 2000
    """Re-send own latest messages when a round lasts this long."""
    n: int = field(init=False, repr=False, compare=False)
    """Number of validators (derived)."""
    quorum: int = field(init=False, repr=False, compare=False)
    """floor(2n/3) + 1 (derived)."""
    skip_threshold: int = field(init=False, repr=False, compare=False)
    """f + 1, the round-skip threshold (derived)."""

    def __post_init__(self) -> None:
        # Read on every event: computed once (the machine's hottest lookups).
        n = len(self.validators)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "quorum", compute_quorum(n))
        object.__setattr__(self, "skip_threshold", compute_max_faulty(n) + 1)


@dataclass(slots=True)
class ConsensusState:
    """One validator's consensus state for its current height (Algorithm 1, lines 1-9)."""

    config: ConsensusConfig
    height: int = 0
    round: int = 0
    step: int = PROPOSE_STEP
    locked_round: int = -1
    locked_value: bytes | None = None
    valid_round: int = -1
    valid_value: bytes | None = None
    last_commit: CommitCertificate | None = None
    """Certificate of height - 1 (the proposer puts it in the block)."""
    decided: bytes | None = None
    """Decision for this height; the machine then waits for :class:`StartHeight`."""
    book: VoteBook = field(default_factory=VoteBook)
    validity: dict[bytes, bool] = field(default_factory=dict)
    requested: set[bytes] = field(default_factory=set)
    own_votes: dict[tuple[int, str], SignedVote] = field(default_factory=dict)
    own_proposals: dict[int, SignedProposal] = field(default_factory=dict)
    done: set[tuple[str, int]] = field(default_factory=set)
    """(clause, round) of "for the first time" clauses that already fired."""
    future: list[SignedVote | SignedProposal] = field(default_factory=list)
    rebroadcasts: int = 0
    """Re-broadcasts already made in this round (each doubles the wait for the next)."""
    """Messages for height + 1, replayed when it starts."""


# --- entry points ---------------------------------------------------------------------


def new_state(config: ConsensusConfig) -> ConsensusState:
    """A machine that has not started a height yet."""
    return ConsensusState(config)


def step(state: ConsensusState, event: Event) -> tuple[ConsensusState, list[Action]]:
    """Apply one event; return the successor state and the actions the driver must take."""
    out: list[Action] = []
    if isinstance(event, StartHeight):
        on_start_height(state, event, out)
    elif state.height == 0 or state.decided is not None:
        if isinstance(event, VoteReceived | ProposalReceived):
            _buffer_future(state, event.message)
        return state, out
    elif isinstance(event, VoteReceived):
        if not on_vote(state, event.message, out):
            return state, out  # nothing kept: the state is still the fixpoint the last step left
    elif isinstance(event, ProposalReceived):
        if not on_proposal_message(state, event.message, out):
            return state, out
    elif isinstance(event, CommitReceived):
        on_commit(state, event.commit, out)
    elif isinstance(event, TimeoutFired):
        on_timeout(state, event, out)
    elif isinstance(event, BlockValidity):
        if event.height == state.height:
            state.validity[event.block_hash] = event.valid
    elif isinstance(event, BlockReady):
        on_block_ready(state, event, out)
    _progress(state, out)
    return state, out


def restore(
    config: ConsensusConfig,
    height: int,
    last_commit: CommitCertificate | None,
    records: list[PersistThenSend],
) -> tuple[ConsensusState, list[Action]]:
    """Rebuild the machine after a restart from the write-ahead records of ``height``.

    Own messages are reloaded (so they are re-sent, never re-signed differently), the
    lock and valid value come from the last record, and the machine resumes in the
    highest round it signed anything in.
    """
    state = ConsensusState(config, height=height, last_commit=last_commit)
    out: list[Action] = []
    top = 0
    for record in records:
        message = record.message
        if isinstance(message, SignedVote):
            if message.vote.height != height:
                continue
            state.own_votes[(message.vote.round, message.vote.type)] = message
            state.book.add_vote(message)
            top = max(top, message.vote.round)
        else:
            if message.proposal.height != height:
                continue
            state.own_proposals[message.proposal.round] = message
            state.book.add_proposal(message)
            state.validity[message.proposal.block_hash] = True
            top = max(top, message.proposal.round)
        lock = record.lock
        state.locked_round, state.locked_value = lock.locked_round, lock.locked_value
        state.valid_round, state.valid_value = lock.valid_round, lock.valid_value
        for prevote in lock.pol:
            state.book.add_vote(prevote)
    _start_round(state, top, out)
    _progress(state, out)
    return state, out


# --- event handlers -------------------------------------------------------------------


def on_start_height(s: ConsensusState, event: StartHeight, out: list[Action]) -> None:
    """Lines 10 and 54: reset the per-height state and start round 0, under the height's
    own configuration when the event brings one (its validator set, DESIGN §12)."""
    future = [m for m in s.future if _height_of(m) == event.height]
    config = event.config or s.config
    s.__init__(config, height=event.height, last_commit=event.last_commit)  # type: ignore[misc]
    _start_round(s, 0, out)
    for message in future:
        if isinstance(message, SignedVote):
            on_vote(s, message, out)
        else:
            on_proposal_message(s, message, out)
        if s.decided is not None:
            return


def on_vote(s: ConsensusState, signed: SignedVote, out: list[Action]) -> bool:
    """Count a vote of this height (buffer one of the next); whether the book changed."""
    v = signed.vote
    if v.chain_id != s.config.chain_id or not 0 <= v.validator < s.config.n:
        return False
    if v.height != s.height:
        if v.height == s.height + 1:
            _buffer_future(s, signed)
        return False
    result, evidence = s.book.add_vote(signed, horizon=s.round + 1)
    if evidence is not None:
        out.append(ReportEvidence(evidence))
    if result is AddResult.DUPLICATE or result is AddResult.IGNORED:
        return False
    if v.type == PRECOMMIT:
        on_precommit_quorum(s, v.round, out)
    if v.round > s.round:
        on_f_plus_one_higher_round(s, v.round, out)
    return True


def on_proposal_message(s: ConsensusState, signed: SignedProposal, out: list[Action]) -> bool:
    """Keep a proposal of this height (buffer one of the next); whether the book changed."""
    p = signed.proposal
    if p.chain_id != s.config.chain_id:
        return False
    if p.height != s.height:
        if p.height == s.height + 1:
            _buffer_future(s, signed)
        return False
    if p.proposer != compute_proposer(p.height, p.round, s.config.n):
        return False
    result, evidence = s.book.add_proposal(signed, horizon=s.round + 1)
    if evidence is not None:
        out.append(ReportEvidence(evidence))
    if result is not AddResult.ADDED:
        return False
    if p.round > s.round:
        on_f_plus_one_higher_round(s, p.round, out)
    return True


def on_commit(s: ConsensusState, commit: CommitCertificate, out: list[Action]) -> None:
    """A verified certificate for the current height decides it (catch-up path)."""
    if commit.height == s.height and s.decided is None:
        s.decided = commit.block_hash
        out.append(Decide(s.height, commit.block_hash, commit))


def on_block_ready(s: ConsensusState, event: BlockReady, out: list[Action]) -> None:
    """Line 19 (getValue returned): propose the fresh block with pol_round -1."""
    if (event.height, event.round) != (s.height, s.round) or event.round in s.own_proposals:
        return
    s.validity[event.block_hash] = True
    _propose(s, event.block_hash, -1, out)


def on_timeout(s: ConsensusState, event: TimeoutFired, out: list[Action]) -> None:
    if (event.height, event.round) != (s.height, s.round):
        return
    if event.kind == "propose":
        on_timeout_propose(s, out)
    elif event.kind == "prevote":
        on_timeout_prevote(s, out)
    elif event.kind == "precommit":
        on_timeout_precommit(s, out)
    else:
        on_timeout_rebroadcast(s, out)


# --- upon-clauses of Algorithm 1 ------------------------------------------------------


def _progress(s: ConsensusState, out: list[Action]) -> None:
    """Fire every enabled clause of the current round until none changes the state."""
    while s.decided is None and s.height > 0:
        before = (s.round, s.step, len(out))
        on_proposal(s, out)
        on_proposal_with_pol(s, out)
        on_prevote_any_quorum(s, out)
        on_prevote_quorum(s, out)
        on_nil_prevote_quorum(s, out)
        on_precommit_any_quorum(s, out)
        on_precommit_quorum(s, s.round, out)
        if (s.round, s.step, len(out)) == before:
            return


def on_proposal(s: ConsensusState, out: list[Action]) -> None:
    """Lines 22-27: PROPOSAL(h, r, v, -1) while step = propose: prevote v if valid and not locked elsewhere."""
    signed = s.book.proposals.get(s.round)
    if s.step != PROPOSE_STEP or signed is None or signed.proposal.pol_round != -1:
        return
    v = signed.proposal.block_hash
    valid = _is_valid(s, v, out)
    if valid is None:
        return
    _vote(s, PREVOTE, v if valid and is_free_to_prevote(s, v, -1) else None, out)
    s.step = PREVOTE_STEP


def on_proposal_with_pol(s: ConsensusState, out: list[Action]) -> None:
    """Lines 28-33: PROPOSAL(h, r, v, vr) and 2f+1 PREVOTE(h, vr, v), 0 <= vr < r: the re-proposal unlock."""
    signed = s.book.proposals.get(s.round)
    if s.step != PROPOSE_STEP or signed is None:
        return
    p = signed.proposal
    if not is_pol_shown(s, p.block_hash, p.pol_round):
        return
    valid = _is_valid(s, p.block_hash, out)
    if valid is None:
        return
    _vote(s, PREVOTE, p.block_hash if valid and is_free_to_prevote(s, p.block_hash, p.pol_round) else None, out)
    s.step = PREVOTE_STEP


def is_free_to_prevote(s: ConsensusState, v: bytes, pol_round: int) -> bool:
    """Lines 23 and 29: not locked on another value since ``pol_round`` (-1: a fresh proposal).

    ``lockedRound = -1 or lockedValue = v`` for a fresh proposal is this rule with
    ``vr = -1``, since ``lockedRound >= -1``.
    """
    return s.locked_round <= pol_round or s.locked_value == v


def is_pol_shown(s: ConsensusState, v: bytes, pol_round: int) -> bool:
    """Line 28: ``0 <= vr < r`` and 2f+1 PREVOTE(h, vr, v) were seen (the proof-of-lock)."""
    return 0 <= pol_round < s.round and s.book.count(pol_round, PREVOTE, v) >= s.config.quorum


def on_prevote_any_quorum(s: ConsensusState, out: list[Action]) -> None:
    """Lines 34-35: 2f+1 PREVOTE(h, r, *) while step = prevote, first time: schedule timeout_prevote."""
    if s.step != PREVOTE_STEP or ("prevote_any", s.round) in s.done:
        return
    if s.book.total(s.round, PREVOTE) >= s.config.quorum:
        s.done.add(("prevote_any", s.round))
        out.append(ScheduleTimeout("prevote", s.height, s.round, compute_timeout(s.config, "prevote", s.round)))


def on_prevote_quorum(s: ConsensusState, out: list[Action]) -> None:
    """Lines 36-43: PROPOSAL(h, r, v, *) and 2f+1 PREVOTE(h, r, v), step >= prevote, first time: lock, precommit."""
    signed = s.book.proposals.get(s.round)
    if s.step < PREVOTE_STEP or signed is None or ("prevote_quorum", s.round) in s.done:
        return
    v = signed.proposal.block_hash
    if s.book.count(s.round, PREVOTE, v) < s.config.quorum or _is_valid(s, v, out) is not True:
        return
    s.done.add(("prevote_quorum", s.round))
    if s.step == PREVOTE_STEP:
        s.locked_value, s.locked_round = v, s.round
        s.valid_value, s.valid_round = v, s.round
        _vote(s, PRECOMMIT, v, out)
        s.step = PRECOMMIT_STEP
    s.valid_value, s.valid_round = v, s.round


def on_nil_prevote_quorum(s: ConsensusState, out: list[Action]) -> None:
    """Lines 44-46: 2f+1 PREVOTE(h, r, nil) while step = prevote: precommit nil."""
    if s.step == PREVOTE_STEP and s.book.count(s.round, PREVOTE, None) >= s.config.quorum:
        _vote(s, PRECOMMIT, None, out)
        s.step = PRECOMMIT_STEP


def on_precommit_any_quorum(s: ConsensusState, out: list[Action]) -> None:
    """Lines 47-48: 2f+1 PRECOMMIT(h, r, *) for the first time: schedule timeout_precommit."""
    if ("precommit_any", s.round) in s.done or s.book.total(s.round, PRECOMMIT) < s.config.quorum:
        return
    s.done.add(("precommit_any", s.round))
    out.append(ScheduleTimeout("precommit", s.height, s.round, compute_timeout(s.config, "precommit", s.round)))


def on_precommit_quorum(s: ConsensusState, round_: int, out: list[Action]) -> None:
    """Lines 49-54: 2f+1 PRECOMMIT(h, r, v) for some round r while undecided: decide v.

    The quorum alone suffices (see the module docstring); the certificate is built from
    exactly the counted precommits.
    """
    if s.decided is not None:
        return
    found, v = s.book.get_quorum_value(round_, PRECOMMIT, s.config.quorum)
    if not found or v is None:
        return
    commit = build_commit(s.book.get_votes_for(round_, PRECOMMIT, v))
    s.decided = v
    out.append(Decide(s.height, v, commit))


def on_f_plus_one_higher_round(s: ConsensusState, round_: int, out: list[Action]) -> None:
    """Lines 55-56: f+1 messages of a round above ours: jump to that round."""
    if s.decided is not None:
        return
    if round_ > s.round and s.book.count_senders(round_) >= s.config.skip_threshold:
        _start_round(s, round_, out)


def on_timeout_propose(s: ConsensusState, out: list[Action]) -> None:
    """Lines 57-60: no usable proposal in time: prevote nil."""
    if s.step == PROPOSE_STEP:
        _vote(s, PREVOTE, None, out)
        s.step = PREVOTE_STEP


def on_timeout_prevote(s: ConsensusState, out: list[Action]) -> None:
    """Lines 61-64: prevotes split: precommit nil."""
    if s.step == PREVOTE_STEP:
        _vote(s, PRECOMMIT, None, out)
        s.step = PRECOMMIT_STEP


def on_timeout_precommit(s: ConsensusState, out: list[Action]) -> None:
    """Lines 65-67: no decision in this round: start the next one."""
    _start_round(s, s.round + 1, out)


def on_timeout_rebroadcast(s: ConsensusState, out: list[Action]) -> None:
    """Still in this round: re-send our latest messages (gossip; the round's first
    re-broadcast only to the validators not heard from in it, :func:`get_unheard`), and
    the round-change proof to the validators that seem to wait for it; then wait twice
    as long as last time (up to ``2 ** MAX_REBROADCAST_DOUBLINGS`` times ``rebroadcast_ms``).

    Every validator does this at once when a round stalls, so at 58 zones one re-broadcast
    is about 58 x 57 x 40 messages: sent on a fixed period while the machine is saturated
    it kept the machine saturated (the round stalled because it was). Doubling the wait
    still re-delivers everything, which is all Algorithm 1 asks after GST.
    """
    to = None if s.rebroadcasts else get_unheard(s)
    if to is None or to:
        for message in get_latest_messages(s):
            out.append(Broadcast(message, to=to))
    proof, waiting = get_round_change_proof(s)
    for vote in proof:
        out.append(Broadcast(vote, to=waiting))
    s.rebroadcasts += 1
    out.append(ScheduleTimeout("rebroadcast", s.height, s.round, compute_rebroadcast_delay(s.config, s.rebroadcasts)))


def compute_rebroadcast_delay(config: ConsensusConfig, fired: int) -> int:
    """The wait before the next re-broadcast of a round, after ``fired`` of them."""
    return int(config.rebroadcast_ms * 2 ** min(fired, MAX_REBROADCAST_DOUBLINGS))


# --- helpers --------------------------------------------------------------------------


def compute_timeout(config: ConsensusConfig, kind: TimeoutKind, round_: int) -> int:
    """Timeouts grow linearly with the round: ``base + round * delta``."""
    base = config.timeout_propose_ms if kind == "propose" else config.timeout_delta_ms
    return base + round_ * config.timeout_delta_ms


def get_latest_messages(s: ConsensusState) -> list[ConsensusMessage]:
    """Own messages of the previous and the current round, the proof-of-lock of the valid
    value, and the certificate of the previous height (the 2f+1 precommits of the
    previous round go separately, only where needed: :func:`get_round_change_proof`).

    This is the gossip Algorithm 1 assumes: every message of a correct validator in the
    rounds the honest validators are still in is eventually re-delivered, so after GST
    validators behind by one round catch up through line 65 and those further behind
    through the f+1 skip of line 55. Algorithm 1 also assumes that a message one correct
    validator received reaches every correct validator; own messages alone do not give
    that: a Byzantine validator that shows its precommit to one validator only (and then
    falls silent) lets that one leave the round while the others wait for a 2f+1 they
    can never see. So the precommits that let this machine leave the previous round are
    relayed too, while a validator seems to be still there (:func:`get_round_change_proof`).
    """
    found: list[ConsensusMessage] = []
    for round_ in (s.round - 1, s.round):
        if round_ in s.own_proposals:
            found.append(s.own_proposals[round_])
        for vote_type in (PREVOTE, PRECOMMIT):
            if (round_, vote_type) in s.own_votes:
                found.append(s.own_votes[(round_, vote_type)])
    if s.round in s.own_proposals:
        found.extend(get_pol(s))  # the proposer justifies a re-proposal (after it: see VoteBook.is_wanted)
    if s.last_commit is not None:
        found.append(s.last_commit)
    return found


def get_unheard(s: ConsensusState) -> frozenset[int]:
    """The validators this machine has no message from in its current round: the first
    re-broadcast of a round goes to them only.

    Peers' streams are reliable, and a stream that reopens gets the latest messages at
    once (the runtime's ``_resend_latest``), so a validator heard from in this round
    holds what this one sent; the ones not heard from may be behind, in an earlier round
    or height, or cut off. Every
    later re-broadcast of the round goes to everyone, for a network that loses messages
    (as the simulator's does before GST). At 58 zones on one machine a height outlasts
    the first re-broadcast period, and sending to everyone doubled a height's votes.
    """
    heard = s.book.senders.get(s.round, set())
    return frozenset(v for v in range(s.config.n) if v not in heard and v != s.config.index)


def get_round_change_proof(s: ConsensusState) -> tuple[list[SignedVote], frozenset[int]]:
    """Other validators' precommits of the previous round, when they are 2f+1 (line 47),
    and who needs them: the validators heard from in the previous round and not in this
    one (they may be waiting there). Nobody else does: those in this round have left the
    previous one, and one heard from in neither is found here once its own re-broadcast
    of the previous round arrives."""
    box = s.book.rounds.get((s.round - 1, PRECOMMIT)) if s.round > 0 else None
    if box is None or len(box.votes) < s.config.quorum:
        return [], frozenset()
    now = s.book.senders.get(s.round, set())
    waiting = frozenset(v for v in s.book.senders.get(s.round - 1, ()) if v not in now and v != s.config.index)
    if not waiting:
        return [], frozenset()
    return [vote for validator, vote in sorted(box.votes.items()) if validator != s.config.index], waiting


def get_pol(s: ConsensusState) -> list[SignedVote]:
    """The prevotes that justify ``valid_value`` (empty when there is none)."""
    if s.valid_round < 0:
        return []
    return s.book.get_votes_for(s.valid_round, PREVOTE, s.valid_value)


def get_lock(s: ConsensusState) -> LockRecord:
    return LockRecord(s.locked_round, s.locked_value, s.valid_round, s.valid_value, tuple(get_pol(s)))


def _start_round(s: ConsensusState, round_: int, out: list[Action]) -> None:
    """Lines 11-21: enter ``round_``; the proposer proposes, everyone arms timeout_propose.

    A ``valid(v) = false`` answer holds for the round it was given in: the driver also
    answers false when it could not get the block at all (peers unreachable), and a
    validator that kept that answer for the whole height would prevote nil for a good
    block in every later round. So negative answers are forgotten here and asked again.
    """
    s.round, s.step = round_, PROPOSE_STEP
    for block_hash in [block_hash for block_hash, valid in s.validity.items() if not valid]:
        del s.validity[block_hash]
        s.requested.discard(block_hash)
    if (round_, PRECOMMIT) in s.own_votes:  # resuming after a restart
        s.step = PRECOMMIT_STEP
    elif (round_, PREVOTE) in s.own_votes:
        s.step = PREVOTE_STEP
    if compute_proposer(s.height, round_, s.config.n) == s.config.index:
        if round_ in s.own_proposals:
            out.append(Broadcast(s.own_proposals[round_]))
        elif s.valid_value is not None:
            propose_valid_value(s, out)
        else:
            out.append(RequestBlock(s.height, round_))  # line 18: getValue()
    out.append(ScheduleTimeout("propose", s.height, round_, compute_timeout(s.config, "propose", round_)))
    s.rebroadcasts = 0
    out.append(ScheduleTimeout("rebroadcast", s.height, round_, s.config.rebroadcast_ms))


def propose_valid_value(s: ConsensusState, out: list[Action]) -> None:
    """Lines 15-16: re-propose ``validValue`` with ``validRound``; its proof-of-lock travels along."""
    assert s.valid_value is not None
    _propose(s, s.valid_value, s.valid_round, out)
    out.extend(Broadcast(prevote) for prevote in get_pol(s))


def _propose(s: ConsensusState, block_hash: bytes, pol_round: int, out: list[Action]) -> None:
    """Line 19: sign and send PROPOSAL(h, r, v, validRound) through the write-ahead log."""
    c = s.config
    if c.index == NOT_A_MEMBER:
        return
    signed = sign_proposal(Proposal(c.chain_id, s.height, s.round, block_hash, pol_round, c.index), c.key)
    s.own_proposals[s.round] = signed
    s.book.add_proposal(signed)
    out.append(compute_send_action(s, signed))


def _vote(s: ConsensusState, vote_type: str, value: bytes | None, out: list[Action]) -> None:
    """Sign a vote unless one exists for this (round, type): then re-send that one, never a second."""
    key = (s.round, vote_type)
    existing = s.own_votes.get(key)
    if existing is not None:
        out.append(Broadcast(existing))
        return
    c = s.config
    if c.index == NOT_A_MEMBER:
        return  # a follower at this height: it counts, it does not vote
    signed = Vote(c.chain_id, vote_type, s.height, s.round, value, c.index).sign(c.key)
    s.own_votes[key] = signed
    s.book.add_vote(signed)
    out.append(compute_send_action(s, signed))
    if vote_type == PRECOMMIT:
        on_precommit_quorum(s, s.round, out)


def compute_send_action(s: ConsensusState, message: SignedVote | SignedProposal) -> Action:
    """A message just signed leaves through the write-ahead log, with the lock it was signed under."""
    return PersistThenSend(message, get_lock(s))


def _is_valid(s: ConsensusState, block_hash: bytes, out: list[Action]) -> bool | None:
    """valid(v): the driver's answer, asking for it the first time."""
    answer = s.validity.get(block_hash)
    if answer is None and block_hash not in s.requested:
        s.requested.add(block_hash)
        out.append(ValidateBlock(s.height, block_hash))
    return answer


def _height_of(message: SignedVote | SignedProposal) -> int:
    return message.vote.height if isinstance(message, SignedVote) else message.proposal.height


def _buffer_future(s: ConsensusState, message: SignedVote | SignedProposal) -> None:
    """Keep a bounded number of next-height messages for replay at StartHeight."""
    if _height_of(message) == s.height + 1 and len(s.future) < 16 * s.config.n:
        s.future.append(message)
