"""Vote-set bookkeeping for one height: tallies, quorums and equivocation evidence.

The first vote of a validator for a (round, type) is the one that counts towards "2f+1
of any value" and the f+1 round skip; a different second one is kept as
:class:`Evidence` (DESIGN §7). As in Algorithm 1, where "2f+1 PREVOTE(h, r, v)" means
messages for v from 2f+1 distinct validators, an equivocator's vote for v still counts
towards v's tally, once per validator and value: otherwise validators that saw an
equivocator's votes in different orders could never agree on a proof-of-lock. Nothing
is ever counted twice. The first proposal from a round's proposer counts; a different
second one is evidence. Signatures are checked by the driver before votes get here.

The book is bounded whatever a Byzantine validator signs
(``docs/decisions/0011-vote-book-bounds.md``):

* per validator and (round, type), :data:`MAX_VALUES_PER_VOTER` different values are
  kept: the first (counted everywhere) and one conflicting (evidence, and counted for
  its own value as above); a further value is kept only if a proposal the book holds
  makes it matter (the value of that round's proposal, or of a re-proposal naming that
  round as its ``pol_round``), else ignored. Without that exception, validators that
  saw an equivocator's values in different orders could disagree for ever on whether a
  proof-of-lock has 2f+1 prevotes (the simulator found such a stall);
* messages of rounds up to ``horizon`` (the machine's round + 1) are always taken;
  beyond it, each validator may occupy at most :data:`MAX_CATCHUP_ROUNDS` rounds at a
  time, as CometBFT's per-peer catch-up rounds. A validator's message for a higher far
  round replaces its lowest one (which is forgotten: the machine has not entered it), a
  lower one is ignored; a far round that comes within the horizon is ordinary again;
* at most :data:`MAX_EVIDENCE_PER_VALIDATOR` pieces of evidence per validator.

So a book's size grows with the rounds the machine went through, never with what a
Byzantine validator chooses to sign (``node.sim.invariants.compute_book_bound``), and
honest validators far ahead still reach a lagging one: their newest rounds always fit,
which is what the f+1 round skip needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ledger.blocks import PRECOMMIT, PREVOTE, SignedVote
from node.messages import SignedProposal

MAX_CATCHUP_ROUNDS = 2
"""Rounds beyond the machine's next one that one validator's messages may occupy at a time."""
MAX_VALUES_PER_VOTER = 2
"""Different values kept per validator and (round, type) whatever it signs: the counted one
and one conflicting (more only for values a kept proposal names, see :meth:`VoteBook.is_wanted`)."""
MAX_EVIDENCE_PER_VALIDATOR = 8
"""Pieces of evidence one book keeps against one validator (it is proven faulty by the first)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different signed messages by one validator for one height, round and type.

    Kept as evidence and not discarded from counting: as decided in
    ``docs/decisions/0005-vote-counting.md``, each of an equivocator's votes still counts
    towards the tally of the value it names (once per validator and value), and only
    the first counts towards "2f+1 of any value" and the f+1 round skip. Of two
    proposals only the first is used. ``node/evidence.py`` checks and keeps evidence.
    """

    first: SignedVote | SignedProposal
    """The message seen first: it counts towards every threshold (a proposal: the one used)."""
    second: SignedVote | SignedProposal
    """The conflicting one: a vote counts towards its own value's tally only; a proposal is unused."""

    @property
    def validator(self) -> int:
        m = self.first
        return m.vote.validator if isinstance(m, SignedVote) else m.proposal.proposer

    @property
    def key(self) -> tuple[int, int, int, str]:
        """(validator, height, round, type) the two messages share."""
        m = self.first
        if isinstance(m, SignedVote):
            return (m.vote.validator, m.vote.height, m.vote.round, m.vote.type)
        return (m.proposal.proposer, m.proposal.height, m.proposal.round, "proposal")


class AddResult(Enum):
    """What adding a message to a book did."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    IGNORED = "ignored"
    """Over a bound (a third value, or a far round beyond the validator's share): not kept."""


@dataclass(slots=True)
class RoundVotes:
    """The counted votes of one (round, type)."""

    votes: dict[int, SignedVote] = field(default_factory=dict)
    """First vote per validator."""
    conflicts: dict[int, SignedVote] = field(default_factory=dict)
    """The one conflicting vote kept per validator (evidence; counted for its value only)."""
    by_value: dict[bytes | None, dict[int, SignedVote]] = field(default_factory=dict)
    """Votes per block hash (``None`` is nil), one per validator and value."""


@dataclass(slots=True)
class VoteBook:
    """Every vote and proposal kept at one height, and the evidence they produced."""

    rounds: dict[tuple[int, str], RoundVotes] = field(default_factory=dict)
    """Counted votes per (round, type)."""
    proposals: dict[int, SignedProposal] = field(default_factory=dict)
    """First proposal per round (from that round's proposer)."""
    senders: dict[int, set[int]] = field(default_factory=dict)
    """Validators heard from (any vote or proposal) per round: the f+1 round-skip count."""
    evidence: list[Evidence] = field(default_factory=list)
    """Equivocations, each reported once."""
    far_rounds: dict[int, list[int]] = field(default_factory=dict)
    """Per validator, the rounds beyond the horizon its messages occupy (at most
    :data:`MAX_CATCHUP_ROUNDS` of them beyond the current horizon)."""
    _evidence_seen: set[tuple[int, int, int, str]] = field(default_factory=set)
    _evidence_count: dict[int, int] = field(default_factory=dict)

    def add_vote(self, signed: SignedVote, horizon: int | None = None) -> tuple[AddResult, Evidence | None]:
        """Count ``signed`` unless its validator already voted in this (round, type).

        ``horizon`` is the highest round taken from everyone (the machine's round + 1);
        ``None`` takes any round (the machine's own votes, a restore).
        """
        v = signed.vote
        if horizon is not None and v.round > horizon and not self._admit_far(v.validator, v.round, horizon):
            return AddResult.IGNORED, None
        key = (v.round, v.type)
        box = self.rounds.get(key)
        if box is None:
            box = self.rounds[key] = RoundVotes()
        voters = box.by_value.get(v.block_hash)
        if voters is not None and v.validator in voters:
            return AddResult.DUPLICATE, None
        first = box.votes.get(v.validator)
        if first is not None and v.validator in box.conflicts:
            if not self.is_wanted(v.round, v.type, v.block_hash):
                return AddResult.IGNORED, None  # the two kept already prove the equivocation
            if voters is None:
                voters = box.by_value[v.block_hash] = {}
            voters[v.validator] = signed
            return AddResult.CONFLICT, None
        if voters is None:
            voters = box.by_value[v.block_hash] = {}
        voters[v.validator] = signed
        if first is None:
            box.votes[v.validator] = signed
            self.senders.setdefault(v.round, set()).add(v.validator)
            return AddResult.ADDED, None
        box.conflicts[v.validator] = signed
        return AddResult.CONFLICT, self._record(first, signed)

    def add_proposal(self, signed: SignedProposal, horizon: int | None = None) -> tuple[AddResult, Evidence | None]:
        """Keep the first proposal of its round; the caller checked the proposer."""
        p = signed.proposal
        if horizon is not None and p.round > horizon and not self._admit_far(p.proposer, p.round, horizon):
            return AddResult.IGNORED, None
        first = self.proposals.get(p.round)
        if first is None:
            self.proposals[p.round] = signed
            self.senders.setdefault(p.round, set()).add(p.proposer)
            return AddResult.ADDED, None
        if first.proposal == p:
            return AddResult.DUPLICATE, None
        return AddResult.CONFLICT, self._record(first, signed)

    def is_wanted(self, round_: int, vote_type: str, block_hash: bytes | None) -> bool:
        """Whether a proposal in the book makes votes for ``block_hash`` in (round, type) count:
        it is the round's proposal, or (prevotes) a re-proposal with ``pol_round = round``."""
        if block_hash is None:
            return False
        proposal = self.proposals.get(round_)
        if proposal is not None and proposal.proposal.block_hash == block_hash:
            return True
        return vote_type == PREVOTE and any(
            p.proposal.pol_round == round_ and p.proposal.block_hash == block_hash for p in self.proposals.values()
        )

    def _admit_far(self, validator: int, round_: int, horizon: int) -> bool:
        """Whether ``validator``'s message for ``round_`` beyond the horizon may be kept."""
        held = [r for r in self.far_rounds.get(validator, ()) if r > horizon]
        if round_ in held:
            self.far_rounds[validator] = held
            return True
        if len(held) >= MAX_CATCHUP_ROUNDS:
            lowest = min(held)
            if round_ < lowest:
                self.far_rounds[validator] = held
                return False
            held.remove(lowest)
            self._forget(validator, lowest)
        held.append(round_)
        self.far_rounds[validator] = held
        return True

    def _forget(self, validator: int, round_: int) -> None:
        """Drop everything ``validator`` sent for ``round_`` (a far round the machine never entered)."""
        for vote_type in (PREVOTE, PRECOMMIT):
            box = self.rounds.get((round_, vote_type))
            if box is None:
                continue
            box.votes.pop(validator, None)
            box.conflicts.pop(validator, None)  # and any further wanted values, below
            for value in [value for value, voters in box.by_value.items() if validator in voters]:
                del box.by_value[value][validator]
                if not box.by_value[value]:
                    del box.by_value[value]
            if not box.votes:
                del self.rounds[(round_, vote_type)]
        proposal = self.proposals.get(round_)
        if proposal is not None and proposal.proposal.proposer == validator:
            del self.proposals[round_]
        senders = self.senders.get(round_)
        if senders is not None:
            senders.discard(validator)
            if not senders:
                del self.senders[round_]

    def _record(self, first: SignedVote | SignedProposal, second: SignedVote | SignedProposal) -> Evidence | None:
        evidence = Evidence(first, second)
        key = evidence.key
        validator = key[0]
        if key in self._evidence_seen or self._evidence_count.get(validator, 0) >= MAX_EVIDENCE_PER_VALIDATOR:
            return None
        self._evidence_seen.add(key)
        self._evidence_count[validator] = self._evidence_count.get(validator, 0) + 1
        self.evidence.append(evidence)
        return evidence

    def count(self, round_: int, vote_type: str, block_hash: bytes | None) -> int:
        box = self.rounds.get((round_, vote_type))
        return 0 if box is None else len(box.by_value.get(block_hash, ()))

    def total(self, round_: int, vote_type: str) -> int:
        box = self.rounds.get((round_, vote_type))
        return 0 if box is None else len(box.votes)

    def get_votes_for(self, round_: int, vote_type: str, block_hash: bytes | None) -> list[SignedVote]:
        box = self.rounds.get((round_, vote_type))
        if box is None:
            return []
        voters = box.by_value.get(block_hash, {})
        return [voters[i] for i in sorted(voters)]

    def get_quorum_value(self, round_: int, vote_type: str, quorum: int) -> tuple[bool, bytes | None]:
        """(True, value) when some value (possibly nil) has ``quorum`` votes in (round, type)."""
        box = self.rounds.get((round_, vote_type))
        if box is not None:
            for value, voters in box.by_value.items():
                if len(voters) >= quorum:
                    return True, value
        return False, None

    def count_senders(self, round_: int) -> int:
        return len(self.senders.get(round_, ()))

    def get_size(self) -> int:
        """Messages kept: votes plus proposals."""
        votes = sum(len(voters) for box in self.rounds.values() for voters in box.by_value.values())
        return votes + len(self.proposals)


__all__ = [
    "MAX_CATCHUP_ROUNDS", "MAX_EVIDENCE_PER_VALIDATOR", "MAX_VALUES_PER_VOTER", "PRECOMMIT", "PREVOTE",
    "AddResult", "Evidence", "RoundVotes", "VoteBook",
]
