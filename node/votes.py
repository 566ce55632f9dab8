"""Vote-set bookkeeping for one height: tallies, quorums and equivocation evidence.

The first vote of a validator for a (round, type) is the one that counts towards "2f+1
of any value" and the f+1 round skip; a different second one is kept as
:class:`Evidence` (DESIGN §7). As in Algorithm 1, where "2f+1 PREVOTE(h, r, v)" means
messages for v from 2f+1 distinct validators, an equivocator's vote for v still counts
towards v's tally, once per validator and value: otherwise validators that saw an
equivocator's votes in different orders could never agree on a proof-of-lock. Nothing
is ever counted twice. The first proposal from a round's proposer counts; a different
second one is evidence. Signatures are checked by the driver before votes get here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ledger.blocks import PRECOMMIT, PREVOTE, SignedVote
from node.messages import SignedProposal


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


@dataclass(slots=True)
class RoundVotes:
    """The counted votes of one (round, type)."""

    votes: dict[int, SignedVote] = field(default_factory=dict)
    """First vote per validator."""
    by_value: dict[bytes | None, dict[int, SignedVote]] = field(default_factory=dict)
    """Votes per block hash (``None`` is nil), one per validator and value."""


@dataclass(slots=True)
class VoteBook:
    """Every vote and proposal seen at one height, and the evidence they produced."""

    rounds: dict[tuple[int, str], RoundVotes] = field(default_factory=dict)
    """Counted votes per (round, type)."""
    proposals: dict[int, SignedProposal] = field(default_factory=dict)
    """First proposal per round (from that round's proposer)."""
    senders: dict[int, set[int]] = field(default_factory=dict)
    """Validators heard from (any vote or proposal) per round: the f+1 round-skip count."""
    evidence: list[Evidence] = field(default_factory=list)
    """Equivocations, each reported once."""
    _evidence_seen: set[tuple[int, int, int, str, bytes | None]] = field(default_factory=set)

    def add_vote(self, signed: SignedVote) -> tuple[AddResult, Evidence | None]:
        """Count ``signed`` unless its validator already voted in this (round, type)."""
        v = signed.vote
        box = self.rounds.get((v.round, v.type))
        if box is None:
            box = self.rounds[(v.round, v.type)] = RoundVotes()
        first = box.votes.get(v.validator)
        voters = box.by_value.setdefault(v.block_hash, {})
        if v.validator in voters:
            return AddResult.DUPLICATE, None
        voters[v.validator] = signed
        if first is None:
            box.votes[v.validator] = signed
            self.senders.setdefault(v.round, set()).add(v.validator)
            return AddResult.ADDED, None
        return AddResult.CONFLICT, self._record(first, signed, v.block_hash)

    def add_proposal(self, signed: SignedProposal) -> tuple[AddResult, Evidence | None]:
        """Keep the first proposal of its round; the caller checked the proposer."""
        p = signed.proposal
        first = self.proposals.get(p.round)
        if first is None:
            self.proposals[p.round] = signed
            self.senders.setdefault(p.round, set()).add(p.proposer)
            return AddResult.ADDED, None
        if first.proposal == p:
            return AddResult.DUPLICATE, None
        return AddResult.CONFLICT, self._record(first, signed, p.block_hash)

    def _record(
        self, first: SignedVote | SignedProposal, second: SignedVote | SignedProposal, value: bytes | None
    ) -> Evidence | None:
        evidence = Evidence(first, second)
        seen = (*evidence.key, value)
        if seen in self._evidence_seen:
            return None
        self._evidence_seen.add(seen)
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


__all__ = ["PRECOMMIT", "PREVOTE", "AddResult", "Evidence", "RoundVotes", "VoteBook"]
