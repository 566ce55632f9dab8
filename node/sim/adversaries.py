"""Byzantine behaviours: what a faulty validator's runtime does differently.

A Byzantine endpoint runs the same driver and machine as an honest one; its
:class:`Adversary` stands between the machine and the network (and answers peers'
sync requests), so it sends what an attacker would, signed with the validator's own
key. One behaviour per rule it attacks:

``silent``
    no process at all.
``twins``
    two honest copies with the same key, each talking to half of the honest
    validators (double proposals and double votes, the Twins approach).
``invalid``
    proposes invalid blocks and finds every block valid.
``forger``
    sends, beside each message, a copy claiming another validator's name (bad
    signature); tells syncing peers it is 3 blocks further than it is, and serves a
    block with a forged certificate.
``double_vote``
    signs a conflicting second vote (or proposal) for each one, and tells each peer
    one of the two.
``amnesia``
    loses its write-ahead log on every restart.
``fake_pol``
    re-proposes with a ``pol_round`` that has no 2f+1 prevotes behind it (Algorithm 1,
    line 28): a value that got some prevotes there, sent along with the prevotes it
    does have, or a fresh block, sent as soon as it is in the round before; it holds
    its precommits back as ``withholder`` does, so rounds fail more often and it gets
    to propose in later rounds.
``equivocator``
    as proposer, sends its block to some peers and a different one to the others,
    with the honest proof-of-lock, none, or a fake one, and votes for each block to
    the peers that got it.
``far_future``
    with each vote it sends (re-sent ones too), signs votes for rounds far ahead (up
    to 10^6): the vote book must stay bounded.
``defector``
    votes nil on everything (so the validators it works with move through rounds
    without deciding, leaving behind those the network cut off), then falls silent for
    good: as soon as its book shows a validator two rounds behind, or around GST. The
    validators that went ahead then need the ones left behind, which must catch up by
    the f+1 round skip.
``withholder``
    signs its precommits but releases each one late (up to 5 s), and to some peers
    only; at half the heights it then falls silent for the rest of the height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.blocks import PRECOMMIT, PREVOTE, CommitCertificate, CommitSignature, Proposal, SignedVote, Vote
from ledger.encoding import H, cb
from node.messages import ConsensusMessage, SignedProposal, sign_proposal

if TYPE_CHECKING:
    from node.sim.core import Endpoint, Simulation

FAR_ROUND = 1_000_000
"""The highest round a ``far_future`` validator signs for."""
FAR_VOTES_PER_VOTE = 40
"""Far-round votes a ``far_future`` validator signs beside each of its own (re-sent ones too)."""


@dataclass(frozen=True, slots=True)
class Send:
    """One message leaving an endpoint."""

    message: ConsensusMessage
    targets: frozenset[int] | None = None
    """Validators to send to; ``None``: every peer."""
    delay_ms: int = 0
    """Held back this long before it leaves."""


class Adversary:
    """An endpoint's runtime hooks; this base behaves as an honest runtime."""

    keeps_wal = True
    builds_invalid = False
    accepts_any_block = False

    def on_send(self, message: ConsensusMessage) -> list[Send]:
        """What actually leaves when the driver sends ``message``."""
        return [Send(message)]

    def on_status(self, head: int) -> int:
        """The head this endpoint reports to a syncing peer."""
        return head

    def is_mute(self) -> bool:
        """Whether it has stopped answering anything (its requests fail as if it were down)."""
        return False

    def on_get_blocks(self, items: list[tuple[int, bytes, CommitCertificate]]) -> list[tuple[int, bytes, CommitCertificate]]:
        """The (height, block, certificate) entries it serves."""
        return items


class Byzantine(Adversary):
    """An adversary that signs its own messages."""

    def __init__(self, sim: Simulation, node: Endpoint) -> None:
        self.sim = sim
        self.node = node
        self.key = sim.keys[node.validator]
        self.chain_id = node.config.consensus.chain_id

    def is_own(self, message: ConsensusMessage) -> bool:
        if isinstance(message, SignedVote):
            return message.vote.validator == self.node.validator
        if isinstance(message, SignedProposal):
            return message.proposal.proposer == self.node.validator
        return False

    def split_peers(self) -> tuple[frozenset[int], frozenset[int]]:
        """Two non-empty halves of the other validators (when there are two)."""
        others = [v for v in range(self.sim.n) if v != self.node.validator]
        self.sim.rng.shuffle(others)
        cut = self.sim.rng.randint(1, max(1, len(others) - 1))
        return frozenset(others[:cut]), frozenset(others[cut:])

    def sign_vote(self, vote_type: str, height: int, round_: int, value: bytes | None) -> SignedVote:
        return Vote(self.chain_id, vote_type, height, round_, value, self.node.validator).sign(self.key)

    def sign_proposal(self, height: int, round_: int, value: bytes, pol_round: int) -> SignedProposal:
        return sign_proposal(Proposal(self.chain_id, height, round_, value, pol_round, self.node.validator), self.key)


class Invalid(Byzantine):
    builds_invalid = True
    accepts_any_block = True


class Amnesia(Byzantine):
    keeps_wal = False


class Forger(Byzantine):
    def on_send(self, message: ConsensusMessage) -> list[Send]:
        if not isinstance(message, SignedVote | SignedProposal):
            return [Send(message)]
        rng = self.sim.rng
        victim = rng.randrange(self.sim.n)
        bogus = H(cb(["forged", rng.getrandbits(64)]))
        if isinstance(message, SignedVote):
            v = message.vote
            forged: ConsensusMessage = Vote(v.chain_id, PRECOMMIT, v.height, v.round, bogus, victim).sign(self.key)
        else:
            p = message.proposal
            forged = sign_proposal(Proposal(p.chain_id, p.height, p.round, bogus, -1, victim), self.key)
        return [Send(message), Send(forged)]

    def on_status(self, head: int) -> int:
        return head + 3

    def on_get_blocks(self, items: list[tuple[int, bytes, CommitCertificate]]) -> list[tuple[int, bytes, CommitCertificate]]:
        height = items[-1][0] + 1 if items else self.node.head + 1
        bogus = H(cb(["forged block", height, self.sim.rng.getrandbits(64)]))
        quorum = self.node.driver.machine.config.quorum
        signatures = tuple(
            CommitSignature(i, self.key.sign_bytes(Vote(self.chain_id, PRECOMMIT, height, 0, bogus, i).signing_bytes()))
            for i in range(quorum)
        )
        return [*items, (height, bogus, CommitCertificate(height, 0, bogus, signatures))]


class DoubleVote(Byzantine):
    def on_send(self, message: ConsensusMessage) -> list[Send]:
        if not self.is_own(message):
            return [Send(message)]
        other = H(cb(["conflict", self.sim.rng.getrandbits(64)]))
        if isinstance(message, SignedVote):
            v = message.vote
            second: ConsensusMessage = self.sign_vote(v.type, v.height, v.round, None if v.block_hash else other)
        else:
            assert isinstance(message, SignedProposal)
            p = message.proposal
            second = self.sign_proposal(p.height, p.round, other, p.pol_round)
        first_half, second_half = self.split_peers()
        return [Send(message, first_half), Send(second, second_half)]


class FakePol(Byzantine):
    def __init__(self, sim: Simulation, node: Endpoint) -> None:
        super().__init__(sim, node)
        self.fakes: dict[tuple[int, int], list[ConsensusMessage]] = {}
        self.withholder = Withholder(sim, node)

    def on_send(self, message: ConsensusMessage) -> list[Send]:
        if not self.is_own(message):
            return [Send(message)]
        if isinstance(message, SignedVote):
            sends = self.withholder.on_send(message)
            return sends + [Send(m) for m in self.get_fake(message.vote.height, message.vote.round + 1)]
        assert isinstance(message, SignedProposal)
        p = message.proposal
        return [Send(m) for m in self.get_fake(p.height, p.round)] if p.round else [Send(message)]

    def get_fake(self, height: int, round_: int) -> list[ConsensusMessage]:
        """The fake re-proposal for (height, round) once, if this validator proposes there (else nothing)."""
        n = self.sim.n
        if round_ < 1 or (height + round_) % n != self.node.validator:
            return []
        key = (height, round_)
        if key not in self.fakes:
            self.fakes[key] = self.make_fake(height, round_)
        return self.fakes[key]

    def make_fake(self, height: int, round_: int) -> list[ConsensusMessage]:
        """A re-proposal whose pol_round lacks 2f+1 prevotes (as far as this validator saw), and the prevotes it has."""
        machine = self.node.driver.machine
        quorum = self.node.driver.machine.config.quorum
        rng = self.sim.rng
        partial: list[tuple[int, bytes, list[SignedVote]]] = []
        if machine.height == height:
            for vr in range(round_):
                box = machine.book.rounds.get((vr, PREVOTE))
                for value, voters in box.by_value.items() if box is not None else ():
                    if value is not None and len(voters) < quorum and value in self.sim.block_info:
                        partial.append((vr, value, list(voters.values())))
        if partial and rng.random() < 0.7:
            vr, value, prevotes = rng.choice(partial)
            return [self.sign_proposal(height, round_, value, vr), *prevotes]
        value = self.sim.new_block(self.node, height, round_)
        vr = round_ - 1 if rng.random() < 0.7 else rng.randrange(round_)
        return [self.sign_proposal(height, round_, value, vr)]


class Equivocator(Byzantine):
    def __init__(self, sim: Simulation, node: Endpoint) -> None:
        super().__init__(sim, node)
        self.splits: dict[tuple[int, int], tuple[frozenset[int], frozenset[int], bytes, SignedProposal]] = {}

    def on_send(self, message: ConsensusMessage) -> list[Send]:
        if not self.is_own(message):
            return [Send(message)]
        if isinstance(message, SignedProposal):
            p = message.proposal
            key = (p.height, p.round)
            if key not in self.splits:
                first_half, second_half = self.split_peers()
                other = self.sim.new_block(self.node, p.height, p.round)
                choices = [-1, p.pol_round] + ([p.round - 1] if p.round >= 1 else [])
                self.splits[key] = (first_half, second_half, p.block_hash, self.sign_proposal(
                    p.height, p.round, other, self.sim.rng.choice(choices)
                ))
            first_half, second_half, _, second = self.splits[key]
            return [Send(message, first_half), Send(second, second_half)]
        assert isinstance(message, SignedVote)
        v = message.vote
        split = self.splits.get((v.height, v.round))
        if split is None or v.block_hash != split[2]:
            return [Send(message)]
        first_half, second_half, _, second = split
        vote_for_second = self.sign_vote(v.type, v.height, v.round, second.proposal.block_hash)
        return [Send(message, first_half), Send(vote_for_second, second_half)]


class FarFuture(Byzantine):
    def on_send(self, message: ConsensusMessage) -> list[Send]:
        sends = [Send(message)]
        if not self.is_own(message) or not isinstance(message, SignedVote):
            return sends
        v = message.vote
        rng = self.sim.rng
        for i in range(FAR_VOTES_PER_VOTE):
            round_ = v.round + (rng.randint(2, 6) if i % 4 == 0 else rng.randint(2, FAR_ROUND))
            value = rng.choice((None, v.block_hash, H(cb(["far", rng.getrandbits(64)]))))
            sends.append(Send(self.sign_vote(rng.choice((PREVOTE, PRECOMMIT)), v.height, round_, value)))
        return sends


class Withholder(Byzantine):
    def __init__(self, sim: Simulation, node: Endpoint) -> None:
        super().__init__(sim, node)
        self.released: set[tuple[int, int]] = set()
        self.silent_after: dict[int, int] = {}
        """Height -> round after which it sends nothing more at that height (half the heights)."""

    def on_send(self, message: ConsensusMessage) -> list[Send]:
        if not self.is_own(message) or not isinstance(message, SignedVote | SignedProposal):
            return [Send(message)]
        height, round_ = get_height_round(message)
        if round_ > self.silent_after.get(height, round_):
            return []
        if not isinstance(message, SignedVote) or message.vote.type != PRECOMMIT:
            return [Send(message)]
        if (height, round_) in self.released:
            return []
        self.released.add((height, round_))
        rng = self.sim.rng
        if height not in self.silent_after and rng.random() < 0.5:
            self.silent_after[height] = round_
        first_half, _ = self.split_peers()
        targets = frozenset({rng.choice(sorted(first_half))}) if rng.random() < 0.5 else first_half
        return [Send(message, targets, rng.randint(0, 600) if rng.random() < 0.5 else rng.randint(600, 5_000))]


def get_height_round(message: SignedVote | SignedProposal) -> tuple[int, int]:
    if isinstance(message, SignedVote):
        return message.vote.height, message.vote.round
    return message.proposal.height, message.proposal.round


class Defector(Byzantine):
    def __init__(self, sim: Simulation, node: Endpoint) -> None:
        super().__init__(sim, node)
        gst = sim.schedule.gst_ms
        self.silent_from = sim.rng.randint(max(0, gst - 2_000), gst + 3_000)
        self.nil_votes: dict[tuple[int, int, str], SignedVote] = {}

    def on_send(self, message: ConsensusMessage) -> list[Send]:
        if self.is_mute():
            return []
        if self.is_someone_left_behind():
            self.silent_from = self.sim.now  # desert now: the ones ahead need the one behind
            return []
        if not self.is_own(message) or not isinstance(message, SignedVote) or message.vote.block_hash is None:
            return [Send(message)]
        v = message.vote
        key = (v.height, v.round, v.type)
        if key not in self.nil_votes:
            self.nil_votes[key] = self.sign_vote(v.type, v.height, v.round, None)
        return [Send(self.nil_votes[key])]

    def is_someone_left_behind(self) -> bool:
        """Whether, as far as its own book shows, some validator is 2 rounds or more behind it."""
        machine = self.node.driver.machine
        if machine.round < 2 or machine.decided is not None:
            return False
        last_seen = dict.fromkeys(range(self.sim.n), 0)
        for round_, senders in machine.book.senders.items():
            for validator in senders:
                last_seen[validator] = max(last_seen[validator], round_)
        return any(r <= machine.round - 2 for v, r in last_seen.items() if v != self.node.validator)

    def is_mute(self) -> bool:
        return self.sim.now >= self.silent_from


_BEHAVIORS: dict[str, type[Byzantine]] = {
    "invalid": Invalid,
    "forger": Forger,
    "double_vote": DoubleVote,
    "amnesia": Amnesia,
    "fake_pol": FakePol,
    "equivocator": Equivocator,
    "far_future": FarFuture,
    "withholder": Withholder,
    "defector": Defector,
}


def make_adversary(behavior: str, sim: Simulation, node: Endpoint) -> Adversary:
    """The runtime hooks of an endpoint with ``behavior`` (honest and twins: the base)."""
    kind = _BEHAVIORS.get(behavior)
    return Adversary() if kind is None else kind(sim, node)
