"""What a validator sends and checks between peers: one certificate per block verified,
certificates only where needed, and a reopened stream brought up to date."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from scripted_node import ScriptedPeers, deliver

from ledger.blocks import PRECOMMIT, PREVOTE, Vote
from ledger.errors import CommitSignatureError
from node.config import NodeConfig
from node.consensus import LockRecord, PersistThenSend
from node.runtime import Node
from scripts.devkit import Alliance
from scripts.devnet import create_devnet


@pytest.fixture
def alliance_node_peers(tmp_path: Path) -> tuple[Alliance, Node, ScriptedPeers]:
    """Validator 0 of a 4-zone devnet, its peer network played by the test."""
    layout = create_devnet(tmp_path / "devnet", 4, 19_700, heartbeat_ms=60_000)
    node = Node(NodeConfig.load(str(layout.zones[0].config)))
    peers = ScriptedPeers({}, -1, asyncio.Event())
    node.peers = peers  # type: ignore[assignment]
    return layout.alliance(), node, peers


def test_a_validator_checks_one_certificate_per_block_and_refuses_a_bad_one_for_another_block(
    alliance_node_peers: tuple[Alliance, Node, ScriptedPeers],
) -> None:
    """Peers' certificates for a block already validated are not verified again; one for
    a different block at that height is (and a bad one is refused)."""
    alliance, node, _ = alliance_node_peers
    chain_id = alliance.genesis.chain_id
    block = alliance.propose(alliance.chain(), [], time_ms=int(time.time() * 1000)).block
    good = alliance.certify(block.block_hash, 1, 0)
    broken_signatures = tuple(type(e)(e.validator, bytes(64)) for e in good.signatures)
    broken_sibling = type(good)(good.height, good.round, good.block_hash, broken_signatures)
    broken_other = type(good)(good.height, good.round, b"\x22" * 32, broken_signatures)

    async def go() -> None:
        with pytest.raises(CommitSignatureError):
            await deliver(node, chain_id, 3, "commit", broken_sibling.encode())
        assert node.seen_commits == {}
        await deliver(node, chain_id, 1, "commit", good.encode())
        assert node.seen_commits[1] == good
        await deliver(node, chain_id, 2, "commit", broken_sibling.encode())
        with pytest.raises(CommitSignatureError):
            await deliver(node, chain_id, 3, "commit", broken_other.encode())
        node.store.close()

    asyncio.run(go())


def test_a_vote_for_the_decided_height_is_answered_with_its_certificate_once_per_peer(
    alliance_node_peers: tuple[Alliance, Node, ScriptedPeers],
) -> None:
    alliance, node, peers = alliance_node_peers
    chain_id = alliance.genesis.chain_id
    block = alliance.commit_next(node.chain, [], time_ms=int(time.time() * 1000))
    stored = node.chain.get_commit(1)
    assert stored is not None

    def vote(validator: int, height: int) -> bytes:
        return Vote(chain_id, PRECOMMIT, height, 0, block.block_hash, validator).sign(alliance.validator_keys[validator]).encode()

    async def go() -> None:
        await deliver(node, chain_id, 2, "vote", vote(2, 1))
        await deliver(node, chain_id, 2, "vote", vote(2, 1))
        await deliver(node, chain_id, 3, "vote", vote(3, 1))
        node.store.close()

    asyncio.run(go())
    assert peers.sent_to == [(2, "commit", stored.encode()), (3, "commit", stored.encode())]


def test_a_peer_whose_stream_opens_gets_the_latest_signed_votes_of_the_height(
    alliance_node_peers: tuple[Alliance, Node, ScriptedPeers],
) -> None:
    """What was queued for a peer while its link was down was dropped; when the stream
    opens it gets the validator's latest prevote and precommit from the write-ahead log."""
    alliance, node, peers = alliance_node_peers
    chain_id = alliance.genesis.chain_id
    key = alliance.validator_keys[0]
    signed = [
        Vote(chain_id, vote_type, 1, round_, None, 0).sign(key)
        for vote_type, round_ in ((PREVOTE, 0), (PRECOMMIT, 0), (PREVOTE, 1))
    ]
    for message in signed:
        node.wal.append(1, PersistThenSend(message, LockRecord(-1, None, -1, None)))
    node._resend_latest(3)
    node.store.close()
    assert sorted(peers.sent_to) == sorted([(3, "vote", signed[2].encode()), (3, "vote", signed[1].encode())])
