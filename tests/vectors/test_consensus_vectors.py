"""Consensus event scripts (tests/vectors/consensus/*.json): a recorded log of events fed
to the machine (node/consensus.py) or the driver (node/driver.py), and exactly what it
must do after each one, plus a digest of every message it signed, byte for byte.

A script names blocks by letters ("A" is ``H(cb(["consensus vector block", "A"]))``) and
validators by index (keys ``SigningKey.from_label("sim validator i")``); a proposal event
is signed by the round's proposer. ``"out"`` on an event is the exact list of what the
machine or driver did in answer (:func:`describe`); omitted, it is not checked. ``"wal"``
as records means what this validator persisted for the height in question so far.

``python tests/vectors/test_consensus_vectors.py --record FILE`` fills in ``"out"`` and
the digest from the current code: only for a new script, whose answers are then read
and checked by hand against Algorithm 1.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.blocks import CommitCertificate, Proposal, SignedVote, Vote, build_commit
from ledger.encoding import H, cb
from ledger.keys import SigningKey
from node import driver as drv
from node.consensus import (
    BlockReady,
    BlockValidity,
    Broadcast,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Decide,
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
    step,
)
from node.driver import (
    ArmHeartbeat,
    Boot,
    CommitSeen,
    DriverConfig,
    DriverState,
    HeadAdvanced,
    HeartbeatFired,
    PeerAt,
    StartSync,
    SyncFinished,
    SyncTick,
    TxsPending,
)
from node.messages import SignedProposal, sign_proposal
from node.sim.mutants import PLANTED_BUGS, planted

VECTORS = Path(__file__).parent / "consensus"
CHAIN = "consensus-vectors"


def get_block(name: str) -> bytes:
    return H(cb(["consensus vector block", name]))


class Script:
    """One validator fed one script."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.n: int = case["validators"]
        self.keys = [SigningKey.from_label(f"sim validator {i}") for i in range(self.n)]
        self.names = {get_block(chr(c)): chr(c) for c in range(ord("A"), ord("Z") + 1)}
        timeouts = case.get("timeouts_ms", [1000, 500])
        self.config = ConsensusConfig(
            CHAIN, tuple(k.public for k in self.keys), case["index"], self.keys[case["index"]],
            timeout_propose_ms=timeouts[0], timeout_delta_ms=timeouts[1],
        )
        self.driver_config = DriverConfig(self.config, heartbeat_ms=case.get("heartbeat_ms", 10_000), stall_ms=3_000)
        self.target: str = case["target"]
        self.machine: ConsensusState = new_state(self.config)
        self.driver: DriverState = drv.new_driver(self.driver_config)
        self.wal: list[PersistThenSend] = []

    # --- events -------------------------------------------------------------------------

    def value(self, name: str | None) -> bytes | None:
        return None if name is None else get_block(name)

    def commit(self, e: dict[str, Any]) -> CommitCertificate:
        votes = [
            Vote(CHAIN, "precommit", e["height"], e.get("round", 0), get_block(e["value"]), i).sign(self.keys[i])
            for i in e["signers"]
        ]
        return build_commit(votes)

    def records(self, height: int) -> tuple[PersistThenSend, ...]:
        return tuple(r for r in self.wal if get_message_height(r.message) == height)

    def build(self, e: dict[str, Any]) -> Any:  # noqa: C901 - one branch per event kind
        kind = e["event"]
        if kind == "StartHeight":
            return StartHeight(e["height"], self.commit(e["last_commit"]) if "last_commit" in e else None)
        if kind == "Vote":
            vote = Vote(CHAIN, e["type"], e["height"], e["round"], self.value(e["value"]), e["validator"])
            return VoteReceived(vote.sign(self.keys[e["validator"]]))
        if kind == "Proposal":
            proposer = e.get("proposer", (e["height"] + e["round"]) % self.n)
            p = Proposal(CHAIN, e["height"], e["round"], get_block(e["value"]), e.get("pol_round", -1), proposer)
            return ProposalReceived(sign_proposal(p, self.keys[proposer]))
        if kind == "Validity":
            return BlockValidity(e["height"], get_block(e["value"]), e["valid"])
        if kind == "BlockReady":
            return BlockReady(e["height"], e["round"], get_block(e["value"]))
        if kind == "Timeout":
            return TimeoutFired(e["kind"], e["height"], e["round"])
        if kind == "Commit":
            return CommitReceived(self.commit(e)) if self.target == "machine" else CommitSeen(e["sender"], self.commit(e))
        if kind == "Boot":
            commit = self.commit(e["commit"]) if "commit" in e else None
            return Boot(e["head"], e.get("time_ms", 0), commit, self.records(e["head"] + 1) if e.get("records") == "wal" else ())
        if kind == "HeadAdvanced":
            records = self.records(e["height"] + 1) if e.get("records") == "wal" else ()
            return HeadAdvanced(e["height"], e.get("time_ms", 0), self.commit(e["commit"]), records)
        if kind == "TxsPending":
            return TxsPending(e["count"])
        if kind == "PeerAt":
            return PeerAt(e["validator"], e["height"])
        simple = {"HeartbeatFired": HeartbeatFired, "SyncTick": SyncTick, "SyncFinished": SyncFinished}
        return simple[kind]()

    def feed(self, e: dict[str, Any]) -> list[Any]:
        if e["event"] == "Restart":  # a new process: nothing but the WAL survives
            self.machine = new_state(self.config)
            self.driver = drv.new_driver(self.driver_config)
            return []
        item = self.build(e)
        if self.target == "machine":
            self.machine, out = step(self.machine, item)
        else:
            self.driver, commands = drv.drive(self.driver, item, e.get("now_ms", 0))
            out = list(commands)
            self.machine = self.driver.machine
        self.wal.extend(c for c in out if isinstance(c, PersistThenSend))
        return out

    # --- what came out ------------------------------------------------------------------

    def name(self, value: bytes | None) -> str:
        return "nil" if value is None else self.names.get(value, value.hex()[:8])

    def describe_message(self, m: Any) -> str:
        if isinstance(m, SignedVote):
            v = m.vote
            return f"{v.type} h{v.height} r{v.round} {self.name(v.block_hash)} by {v.validator}"
        if isinstance(m, SignedProposal):
            p = m.proposal
            return f"proposal h{p.height} r{p.round} {self.name(p.block_hash)} pol {p.pol_round} by {p.proposer}"
        assert isinstance(m, CommitCertificate)
        return f"commit h{m.height} r{m.round} {self.name(m.block_hash)}"

    def describe(self, c: Any) -> str:  # noqa: C901 - one branch per command kind
        if isinstance(c, PersistThenSend):
            return f"sign {self.describe_message(c.message)}"
        if isinstance(c, Broadcast):
            to = "" if c.to is None else " to " + ",".join(str(v) for v in sorted(c.to))
            return f"send {self.describe_message(c.message)}{to}"
        if isinstance(c, ScheduleTimeout):
            return f"timeout {c.kind} h{c.height} r{c.round} {c.delay_ms}"
        if isinstance(c, Decide):
            return f"decide h{c.height} {self.name(c.block_hash)}"
        if isinstance(c, ValidateBlock):
            return f"validate h{c.height} {self.name(c.block_hash)}"
        if isinstance(c, RequestBlock):
            return f"build h{c.height} r{c.round}"
        if isinstance(c, ReportEvidence):
            return f"evidence by {c.evidence.validator}"
        if isinstance(c, ArmHeartbeat):
            return f"heartbeat {c.delay_ms}"
        if isinstance(c, StartSync):
            return "sync"
        raise AssertionError(f"unexpected command {c!r}")

    def digest(self) -> str:
        return hashlib.sha256(b"".join(r.message.encode() for r in self.wal)).hexdigest()

    def state(self) -> dict[str, Any]:
        m = self.machine
        return {
            "height": m.height, "round": m.round, "step": m.step, "locked_round": m.locked_round,
            "locked_value": None if m.locked_value is None else self.name(m.locked_value),
            "decided": None if m.decided is None else self.name(m.decided), "book_size": m.book.get_size(),
        }


def get_message_height(message: SignedVote | SignedProposal) -> int:
    return message.vote.height if isinstance(message, SignedVote) else message.proposal.height


def load_cases() -> list[Path]:
    return sorted(VECTORS.glob("*.json"))


@pytest.mark.parametrize("path", load_cases(), ids=lambda p: p.stem)
def test_consensus_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    script = Script(case)
    for position, event in enumerate(case["events"]):
        out = [script.describe(c) for c in script.feed(event)]
        if "out" in event:
            assert out == event["out"], f"{path.name} event {position} ({event['event']})"
    assert [r for r in (script.describe(c) for c in script.wal)] == case["signed"], path.name
    assert script.digest() == case["digest"], f"{path.name}: signed bytes differ"
    assert {k: script.state()[k] for k in case["final"]} == case["final"], path.name


def test_vectors_cover_the_catch_up_race_and_a_fake_proof_of_lock() -> None:
    names = {p.stem for p in load_cases()}
    assert {"driver_catchup_race_keeps_vote", "machine_fake_pol_prevoted_nil"} <= names


@pytest.mark.parametrize("bug", sorted(PLANTED_BUGS))
def test_every_planted_bug_breaks_some_vector(bug: str) -> None:
    broken = []
    with planted(bug):
        for path in load_cases():
            try:
                test_consensus_vector(path)
            except AssertionError:
                broken.append(path.stem)
    assert broken, f"no vector notices planted bug {bug}"


def record(path: Path) -> None:
    """Fill in every event's "out", "signed", "digest" and "final" from the current code."""
    case = json.loads(path.read_text())
    script = Script(case)
    for event in case["events"]:
        event["out"] = [script.describe(c) for c in script.feed(event)]
    case["signed"] = [script.describe(c) for c in script.wal]
    case["digest"] = script.digest()
    case["final"] = script.state()
    path.write_text(json.dumps(case, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--record"]:
        for name in sys.argv[2:]:
            record(Path(name))
