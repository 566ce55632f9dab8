"""What the simulator checks while a schedule runs, from a view no validator has: every
message anyone signed and sent, every block, every decision.

* **agreement**: no two honest validators commit different blocks at one height;
* **validity**: every block an honest validator commits is valid and carries a valid
  commit certificate;
* **no honest double-sign**: no honest key signs two different votes (or proposals)
  for one height, round and type;
* **locks and proofs-of-lock** (the rules the safety proof of Algorithm 1 rests on):
  an honest validator prevotes a block v in round r only for a proposal of v in round r
  by that round's proposer, either fresh (``vr = -1``) while not locked on another
  block, or with ``0 <= vr < r`` such that 2f+1 validators signed PREVOTE(h, vr, v) and
  its lock is no newer than ``vr`` (or is on v). Its lock is its latest precommit for a
  block. A machine that ignores its lock, or takes a proof-of-lock on the proposer's
  word, fails here the moment it signs, whether or not a fork follows;
* **bounded memory**: an honest machine's vote book never holds more than
  :func:`compute_book_bound` messages, whatever Byzantine validators sign;
* **liveness**: every honest validator commits every height within the bound after GST
  (checked by :mod:`node.sim.core` at the end).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from ledger.blocks import PRECOMMIT, PREVOTE, SignedVote, compute_proposer, compute_quorum
from node.messages import ConsensusMessage, SignedProposal
from node.votes import MAX_CATCHUP_ROUNDS, MAX_VALUES_PER_VOTER

MessageKey = tuple[int, int, int, str]
"""(validator, height, round, type) of a vote or proposal (type ``proposal``)."""


def compute_message_key(message: SignedVote | SignedProposal) -> MessageKey:
    if isinstance(message, SignedVote):
        v = message.vote
        return (v.validator, v.height, v.round, v.type)
    p = message.proposal
    return (p.proposer, p.height, p.round, "proposal")


def compute_book_bound(n: int, round_: int) -> int:
    """Most messages a correct book holds at ``round_``, whatever Byzantine validators sign.

    Rounds held: up to round + 1 from everyone, :data:`MAX_CATCHUP_ROUNDS` more per
    validator. Per validator, round and type: :data:`MAX_VALUES_PER_VOTER` values, plus
    the values kept proposals name (the round's own proposal, and for prevotes each
    re-proposal naming the round as ``pol_round``: at most one per round held). One
    proposal per round.
    """
    rounds = round_ + 2 + MAX_CATCHUP_ROUNDS
    per_validator = rounds * (2 * MAX_VALUES_PER_VOTER + 2) + rounds
    return n * per_validator + round_ + 2 + n * MAX_CATCHUP_ROUNDS


class Oracle:
    """The global record of one schedule and the safety checks on it."""

    def __init__(self, n: int, set_size: Callable[[int], int] | None = None) -> None:
        self.n = n
        self.set_size: Callable[[int], int] = set_size or (lambda height: n)
        """The size of each height's validator set (DESIGN §12: it may change)."""
        self.signed: dict[MessageKey, ConsensusMessage] = {}
        """First message seen per key from an honest validator (double-sign check)."""
        self.prevoters: defaultdict[tuple[int, int, bytes | None], set[int]] = defaultdict(set)
        """(height, round, value) -> validators that signed PREVOTE(height, round, value)."""
        self.proposed: defaultdict[tuple[int, int], set[tuple[bytes, int]]] = defaultdict(set)
        """(height, round) -> (value, pol_round) proposed by that round's proposer."""
        self.locks: dict[tuple[int, int], tuple[int, bytes]] = {}
        """(validator, height) -> (round, value) of its latest precommit for a block."""
        self.decisions: dict[int, bytes] = {}

    def record(self, message: SignedVote | SignedProposal) -> None:
        """A validly signed message left some validator (or was persisted by its signer)."""
        if isinstance(message, SignedVote):
            v = message.vote
            if v.type == PREVOTE:
                self.prevoters[(v.height, v.round, v.block_hash)].add(v.validator)
        else:
            p = message.proposal
            if p.proposer == compute_proposer(p.height, p.round, self.set_size(p.height)):
                self.proposed[(p.height, p.round)].add((p.block_hash, p.pol_round))

    def check_own(self, message: SignedVote | SignedProposal) -> str | None:
        """An honest validator's own message: the double-sign and lock checks; the violation, if any."""
        key = compute_message_key(message)
        first = self.signed.get(key)
        if first is not None:
            if first != message:
                return f"double-sign: validator {key[0]} signed two {key[3]}s at height {key[1]} round {key[2]}"
            return None
        self.signed[key] = message
        self.record(message)
        if not isinstance(message, SignedVote):
            return None
        v = message.vote
        if v.type == PRECOMMIT:
            if v.block_hash is not None:
                held = self.locks.get((v.validator, v.height))
                if held is None or held[0] < v.round:
                    self.locks[(v.validator, v.height)] = (v.round, v.block_hash)
            return None
        if v.block_hash is None:
            return None
        return self.check_prevote(v.validator, v.height, v.round, v.block_hash)

    def check_prevote(self, validator: int, height: int, round_: int, value: bytes) -> str | None:
        """Lines 22-33 of Algorithm 1, seen from outside."""
        lock = self.locks.get((validator, height))
        locked_round, locked_value = lock if lock is not None and lock[0] < round_ else (-1, None)
        proposals = [vr for v, vr in self.proposed.get((height, round_), ()) if v == value]
        quorum = compute_quorum(self.set_size(height))
        if not proposals:
            return f"prevote without proposal: validator {validator} prevoted {value.hex()[:12]} at height {height} round {round_}, which nobody proposed"
        for vr in proposals:
            free = locked_round <= vr or locked_value == value
            shown = vr == -1 or (0 <= vr < round_ and len(self.prevoters.get((height, vr, value), ())) >= quorum)
            if free and shown:
                return None
        if any(vr == -1 or len(self.prevoters.get((height, vr, value), ())) >= quorum for vr in proposals):
            return (
                f"lock: validator {validator}, locked on {locked_value.hex()[:12] if locked_value else 'nil'} since round"
                f" {locked_round}, prevoted {value.hex()[:12]} at height {height} round {round_} (proposed with"
                f" pol_round {sorted(proposals)})"
            )
        return (
            f"proof-of-lock: validator {validator} prevoted {value.hex()[:12]} at height {height} round {round_}"
            f" for a re-proposal with pol_round {sorted(proposals)} that fewer than {quorum} validators prevoted"
        )

    def check_decision(self, height: int, block_hash: bytes) -> str | None:
        earlier = self.decisions.setdefault(height, block_hash)
        if earlier != block_hash:
            return f"agreement: height {height} decided {block_hash.hex()[:12]} and {earlier.hex()[:12]}"
        return None
