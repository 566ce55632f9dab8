"""What a validator keeps from peers' proposals: nothing before the proposer check,
one block per (height, round), nothing for rounds far beyond its own.

Regression: the old runtime stored a proposal's block before checking its proposer,
and every block of an equivocating proposer or of any far-future round.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from scripted_node import ScriptedPeers, deliver, others_chain, until

from ledger.blocks import Block, Proposal
from ledger.encoding import cb
from ledger.errors import PeerMalformedError
from node.config import NodeConfig
from node.driver import MAX_ROUNDS_AHEAD_FOR_BLOCKS
from node.messages import sign_proposal
from node.runtime import Node
from scripts.devkit import Alliance
from scripts.devnet import create_devnet


def _proposal_body(alliance: Alliance, block: Block, round_: int, proposer: int) -> bytes:
    chain_id = alliance.genesis.chain_id
    signed = sign_proposal(Proposal(chain_id, 1, round_, block.block_hash, -1, proposer), alliance.validator_keys[proposer])
    return cb({"proposal": signed.encode(), "block": block.encode()})


def _variant(alliance: Alliance, round_: int, now: int) -> Block:
    """Another valid height-1 block (a different time, so a different hash)."""
    return alliance.propose(alliance.chain(), [], round_=round_, time_ms=now + round_).block


@pytest.fixture
def alliance_and_node(tmp_path: Path) -> tuple[Alliance, Node]:
    layout = create_devnet(tmp_path / "devnet", 4, 19_600, heartbeat_ms=60_000)
    node = Node(NodeConfig.load(str(layout.zones[0].config)))
    node.peers = ScriptedPeers({"status": cb({"height": 0, "block_hash": b"\0" * 32}), "blocks": []}, -1, asyncio.Event())  # type: ignore[assignment]
    return layout.alliance(), node


def test_a_proposal_from_the_wrong_proposer_is_refused_before_its_block_is_kept(
    alliance_and_node: tuple[Alliance, Node],
) -> None:
    alliance, node = alliance_and_node
    _, blocks, _ = others_chain(alliance, int(time.time() * 1000))

    async def go() -> None:
        # (1 + 0) mod 4 = 1 proposes height 1 round 0; validator 2 signs a proposal anyway.
        with pytest.raises(PeerMalformedError, match="expected validator 1"):
            await deliver(node, alliance.genesis.chain_id, 2, "proposal", _proposal_body(alliance, blocks[0], 0, 2))
        assert blocks[0].block_hash not in node.blocks
        node.store.close()

    asyncio.run(go())


def test_an_equivocating_proposer_gets_one_block_kept_per_round_and_none_far_ahead(
    alliance_and_node: tuple[Alliance, Node],
) -> None:
    alliance, node = alliance_and_node
    now = int(time.time() * 1000)
    chain_id = alliance.genesis.chain_id

    async def go() -> None:
        first, second = _variant(alliance, 0, now), _variant(alliance, 0, now + 7)
        assert first.block_hash != second.block_hash
        await deliver(node, chain_id, 1, "proposal", _proposal_body(alliance, first, 0, 1))
        await deliver(node, chain_id, 1, "proposal", _proposal_body(alliance, second, 0, 1))
        assert first.block_hash in node.blocks and second.block_hash not in node.blocks

        far = 4 * (MAX_ROUNDS_AHEAD_FOR_BLOCKS + 1) + 1  # a round validator 2 proposes, far ahead
        assert (1 + far) % 4 == 2
        distant = _variant(alliance, far, now)
        await deliver(node, chain_id, 2, "proposal", _proposal_body(alliance, distant, far, 2))
        assert distant.block_hash not in node.blocks
        assert len(node.blocks) == 1
        node.store.close()

    asyncio.run(go())


def test_equivocation_is_persisted_and_served_at_v1_evidence(alliance_and_node: tuple[Alliance, Node]) -> None:
    """Regression: evidence was a repr() line in a file nobody served."""
    import httpx

    from api.app import create_app
    from ledger.blocks import PREVOTE, Vote
    from node.evidence import EvidenceEntry, validate_evidence

    alliance, node = alliance_and_node
    chain_id = alliance.genesis.chain_id
    key = alliance.validator_keys[2]

    async def go() -> list[dict[str, object]]:
        await node.start()
        try:
            await until(lambda: node.state.height == 1)
            for value in (b"\x01" * 32, b"\x02" * 32):
                vote = Vote(chain_id, PREVOTE, 1, 0, value, 2).sign(key)
                await deliver(node, chain_id, 2, "vote", vote.encode())
            await until(lambda: len(node.evidence_log) == 1)
            transport = httpx.ASGITransport(app=create_app(node))
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
                response = await client.get("/v1/evidence")
                assert response.status_code == 200
                body: list[dict[str, object]] = response.json()
                return body
        finally:
            await node.stop()

    served = asyncio.run(go())
    assert [(e["validator"], e["height"], e["round"], e["type"]) for e in served] == [(2, 1, 0, "prevote")]
    line = {k: v for k, v in served[0].items() if k != "seq"}
    entry = EvidenceEntry.decode(json.dumps(line).encode(), 0)
    validate_evidence(entry.evidence, chain_id, alliance.genesis.validators)


def test_a_peers_big_txs_batch_does_not_hold_the_loop(alliance_and_node: tuple[Alliance, Node]) -> None:
    """Regression: a peer's batch of up to 10,000 transactions was admitted in one go on
    the loop that counts votes (about 0.4 ms each)."""
    from ledger.documents import document_number
    from scripts.devkit import load_example, with_number

    alliance, node = alliance_and_node
    coo = "certificate_of_origin"
    template = load_example("coo_preferential.json")
    batch = []
    for i in range(1500):
        document = with_number(template, coo, f"CO-PEER-{i:05d}")
        envelope, content = alliance.issue("EG-TEDA", coo, document, document_number(coo, document))
        batch.append({"tx": envelope.encode(), "doc": content})
    body = cb(batch)

    async def go() -> tuple[float, float]:
        longest = 0.0
        done = False

        async def ticker() -> None:
            nonlocal longest
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                longest = max(longest, now - last)
                last = now

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        await deliver(node, alliance.genesis.chain_id, 1, "txs", body)
        took = time.perf_counter() - started
        done = True
        await task
        assert len(node.mempool) == 1500
        node.store.close()
        return longest, took

    # Relative to the whole batch, so a loaded machine cannot fail it: admitted in one
    # go, the longest pause was the whole batch (0.46 s of 0.46 s on a quiet machine).
    longest, took = asyncio.run(go())
    assert longest < took / 4, (longest, took)


def test_waiting_on_hashes_that_never_become_final_leaves_nothing_behind() -> None:
    """Regression: a timed-out ``?wait=`` left its futures in the node's waiters for ever."""
    from node.finality import STATUS_PENDING, FinalityWaiters

    waiters = FinalityWaiters()

    async def go() -> list[str]:
        results = await waiters.wait_final([bytes([i]) * 32 for i in range(50)], 0.01, lambda _h: None)
        return [r.status for r in results]

    assert asyncio.run(go()) == [STATUS_PENDING] * 50
    assert len(waiters) == 0


def test_a_vote_for_a_committed_height_is_dropped_before_its_signature_is_checked(
    alliance_and_node: tuple[Alliance, Node],
) -> None:
    """At 58 zones a third of each height's precommits arrive after the node committed it:
    checking their signatures bought nothing. A vote for the height being decided still is."""
    from ledger.blocks import PRECOMMIT, Vote
    from ledger.errors import VoteSignatureError

    alliance, node = alliance_and_node
    chain_id = alliance.genesis.chain_id
    forger = alliance.validator_keys[3]  # signs as validator 2

    alliance.commit_next(node.chain, [], time_ms=int(time.time() * 1000) - 1000)

    async def go() -> None:
        await node.start()
        try:
            await until(lambda: node.state.height == 2)
            stale = Vote(chain_id, PRECOMMIT, 1, 0, b"\x01" * 32, 2).sign(forger)
            await deliver(node, chain_id, 2, "vote", stale.encode())  # no error, nothing counted
            current = Vote(chain_id, PRECOMMIT, 2, 0, b"\x01" * 32, 2).sign(forger)
            with pytest.raises(VoteSignatureError):
                await deliver(node, chain_id, 2, "vote", current.encode())
        finally:
            await node.stop()

    asyncio.run(go())
