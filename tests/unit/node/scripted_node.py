"""A real :class:`node.runtime.Node` with its peer network played by the test.

Real LevelDB, real WAL, the real driver and machine; only ``node.peers`` is replaced
by :class:`ScriptedPeers`, which answers status and block requests from a chain the
test builds with the other validators' keys, and records what the node sends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ledger.blocks import PRECOMMIT, PREVOTE, Proposal, SignedVote, Vote
from ledger.encoding import cb, decode_cb, expect_map
from node.messages import sign_proposal
from node.peers import PeerMessage, PeerStats
from node.runtime import Node
from node.stream import StreamCounters
from scripts.devkit import Alliance


class ScriptedPeers:
    """The node's peer network, played by the test: answers from the others' chain."""

    def __init__(self, serve: dict[str, Any], slow: int, release: asyncio.Event) -> None:
        self.serve = serve
        self.slow = slow
        self.release = release
        self.sent: list[tuple[str, bytes]] = []
        self.sent_to: list[tuple[int, str, bytes]] = []
        self.inbound = StreamCounters()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def broadcast(self, kind: str, body: bytes) -> None:
        self.sent.append((kind, body))

    def send(self, index: int, kind: str, body: bytes) -> None:
        self.sent.append((kind, body))
        self.sent_to.append((index, kind, body))

    async def request(self, index: int, kind: str, body: bytes) -> bytes:
        if kind == "status":
            if index == self.slow:
                await self.release.wait()
            return bytes(self.serve["status"])
        if kind == "get_blocks":
            start = expect_map(decode_cb(body), "get_blocks")["from"]
            return cb([
                {"block": item["block"], "commit": item["commit"]}
                for item in self.serve["blocks"] if item["height"] >= start
            ])
        if kind == "txs":
            return b""
        raise AssertionError(f"unexpected request {kind}")

    def stats(self) -> dict[int, PeerStats]:
        return {}

    def own_votes(self, validator: int) -> list[SignedVote]:
        return [SignedVote.decode(body) for kind, body in self.sent if kind == "vote"
                if SignedVote.decode(body).vote.validator == validator]


def others_chain(alliance: Alliance, now: int) -> tuple[Any, list[Any], dict[str, Any]]:
    """The other validators' chain: heights 1 and 2 committed, their height-3 block built."""
    chain = alliance.chain()
    blocks = []
    for height in (1, 2):
        blocks.append(alliance.commit_next(chain, [], time_ms=now - 3000 + height * 1000))
    commit2 = chain.get_commit(2)
    assert commit2 is not None
    served = {"height": 2, "block": blocks[1].encode(), "commit": commit2.encode()}
    blocks.append(alliance.propose(chain, [], time_ms=now).block)
    return chain, blocks, served


async def deliver(node: Node, chain_id: str, sender: int, kind: str, body: bytes) -> None:
    await node.on_peer_message(PeerMessage(chain_id, sender, kind, 0, body))


async def until(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)


async def round_zero(
    node: Node, chain_id: str, keys: list[Any], block: Any, *, height: int, proposer: int, precommit: bool
) -> None:
    """The other three validators' messages of round 0 for ``block``."""
    proposal = sign_proposal(Proposal(chain_id, height, 0, block.block_hash, -1, proposer), keys[proposer])
    await deliver(node, chain_id, proposer, "proposal", cb({"proposal": proposal.encode(), "block": block.encode()}))
    types = (PREVOTE, PRECOMMIT) if precommit else (PREVOTE,)
    for vote_type in types:
        for v in (1, 2, 3):
            vote = Vote(chain_id, vote_type, height, 0, block.block_hash, v).sign(keys[v])
            await deliver(node, chain_id, v, "vote", vote.encode())
