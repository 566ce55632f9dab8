"""Regression: an honest validator double-signed after catch-up.

The old ``sync_once`` applied blocks, kept awaiting slower peers' status replies, and
then replaced the consensus machine by a fresh one. While it waited, the next height
started and the node signed there (lock included); the fresh machine then signed again
(nil after its propose timeout). Here the real :class:`node.runtime.Node` runs on real
LevelDB and a real WAL; only the peer network is scripted, with one slow status peer.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from scripted_node import ScriptedPeers, deliver, others_chain, round_zero, until

from ledger.blocks import PREVOTE, Proposal, SignedVote
from ledger.encoding import cb
from node.config import NodeConfig
from node.messages import sign_proposal
from node.runtime import Node
from scripts.devnet import create_devnet


def test_catch_up_with_a_slow_status_peer_never_signs_twice(tmp_path: Path) -> None:
    layout = create_devnet(tmp_path / "devnet", 4, 19_400, heartbeat_ms=60_000)
    alliance = layout.alliance()
    keys = alliance.validator_keys
    chain_id = alliance.genesis.chain_id

    async def scenario() -> tuple[list[SignedVote], int]:
        now = int(time.time() * 1000)
        chain, blocks, served = others_chain(alliance, now)
        release = asyncio.Event()
        status = cb({"height": 2, "block_hash": blocks[1].block_hash})
        peers = ScriptedPeers({"status": status, "blocks": [served]}, slow=3, release=release)
        node = Node(NodeConfig.load(str(layout.zones[0].config)))
        node.peers = peers  # type: ignore[assignment]
        await node.start()
        try:
            # Height 1 is decided with the others (proposer 1); then the node idles.
            await round_zero(node, chain_id, keys, blocks[0], height=1, proposer=1, precommit=True)
            await until(lambda: node.chain.height == 1)
            assert node.chain.height == 1

            # A certificate for height 2 arrives: the node is behind and syncs. Peers 1
            # and 2 answer their status at once; peer 3's reply hangs.
            await deliver(node, chain_id, 1, "commit", served["commit"])
            await until(lambda: node.chain.height == 2)
            assert node.chain.height == 2

            # Height 3 runs while the sync still waits: proposal from validator 3, and
            # prevotes from 1, 2, 3 for it; validator 0 prevotes, locks and precommits.
            await round_zero(node, chain_id, keys, blocks[2], height=3, proposer=3, precommit=False)
            await until(lambda: node.state.locked_round == 0 and node.state.height == 3)
            assert (node.state.height, node.state.locked_round) == (3, 0)

            # The slow peer answers; the sync ends. Then past the propose timeout.
            release.set()
            await asyncio.sleep(2.0)
            return peers.own_votes(0), node.state.locked_round
        finally:
            await node.stop()

    votes, locked_round = asyncio.run(scenario())
    at_3_0: dict[str, set[bytes | None]] = {}
    for signed in votes:
        v = signed.vote
        if (v.height, v.round) == (3, 0):
            at_3_0.setdefault(v.type, set()).add(v.block_hash)
    assert at_3_0, "validator 0 never voted at height 3"
    assert all(len(values) == 1 for values in at_3_0.values()), f"validator 0 signed two votes: {at_3_0}"
    assert locked_round == 0


def test_a_vote_whose_wal_write_failed_is_never_sent(tmp_path: Path) -> None:
    """The old runtime kept the vote in the machine after a failed append, and the
    re-broadcast sent it later. Now the machine is rebuilt from what reached the disk."""
    layout = create_devnet(tmp_path / "devnet", 4, 19_500, heartbeat_ms=60_000)
    alliance = layout.alliance()
    keys = alliance.validator_keys
    chain_id = alliance.genesis.chain_id

    async def scenario() -> tuple[list[SignedVote], list[bytes]]:
        now = int(time.time() * 1000)
        _, blocks, _ = others_chain(alliance, now)
        peers = ScriptedPeers({"status": cb({"height": 0, "block_hash": b"\0" * 32}), "blocks": []}, -1, asyncio.Event())
        node = Node(NodeConfig.load(str(layout.zones[0].config)))
        node.peers = peers  # type: ignore[assignment]
        failed: list[bytes] = []
        real_append = node.wal.append

        def failing_append(height: int, action: Any, block: bytes | None = None) -> None:
            if not failed:
                failed.append(action.message.encode())
                raise OSError(28, "No space left on device")
            real_append(height, action, block)

        node.wal.append = failing_append  # type: ignore[method-assign]
        await node.start()
        try:
            proposal = sign_proposal(Proposal(chain_id, 1, 0, blocks[0].block_hash, -1, 1), keys[1])
            await deliver(node, chain_id, 1, "proposal", cb({"proposal": proposal.encode(), "block": blocks[0].encode()}))
            await until(lambda: bool(failed))
            # Past the propose timeout and two re-broadcasts.
            await asyncio.sleep(4.5)
            return peers.own_votes(0), failed
        finally:
            await node.stop()

    votes, failed = asyncio.run(scenario())
    assert failed, "the append never failed: the scenario did not run"
    assert failed[0] not in {v.encode() for v in votes}, "the vote whose write failed was sent"
    prevotes = {v.vote.block_hash for v in votes if (v.vote.height, v.vote.round, v.vote.type) == (1, 0, PREVOTE)}
    assert len(prevotes) <= 1
    assert votes, "the rebuilt machine went on voting"
