"""Kill a committing process at random instants; the store must always stand on a whole block."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.chain import LOG_PREFIX, Chain
from ledger.encoding import H
from ledger.membership import compute_genesis_records
from ledger.merkle import merkle_root
from ledger.smt import compute_root_naive
from ledger.store import LevelDBStore
from ledger.transactions import Envelope
from scripts.devkit import make_alliance

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 24


def check_whole_block(chain: Chain) -> int:
    """Every record agrees with the head: roots recompute, nothing of a later block is present."""
    header = chain.head_header
    if header is None:
        assert chain.height == 0
        return 0
    leaves: list[bytes] = []
    doc_ids: set[str] = set()
    for height in range(1, chain.height + 1):
        block = chain.get_block(height)
        commit = chain.get_commit(height)
        assert block is not None and commit is not None, f"height {height} incomplete"
        assert commit.block_hash == block.block_hash
        leaves.extend(block.txs)
        for tx in block.txs:
            body = Envelope.decode(tx).tx.body
            doc_ids.add(body.doc_id)  # type: ignore[union-attr]
    assert chain.get_block(chain.height + 1) is None
    assert header.log_size == len(leaves)
    assert header.log_root == merkle_root(leaves)
    assert chain.log().size == len(leaves)
    assert chain.log().root() == header.log_root
    zones, officers = compute_genesis_records(chain.genesis)  # in the tree from genesis (DESIGN §12)
    items = {record.state_key: record.state_value() for record in (*zones, *officers)}
    for doc_id in doc_ids:
        record = chain.get_doc(doc_id)
        assert record is not None
        items[H(doc_id.encode())] = record.state_value()
    assert header.state_root == compute_root_naive(items)
    assert chain.state_tree().root() == header.state_root
    tx_records = sum(1 for _ in chain.store.iterate(b"t/"))
    assert tx_records == len(leaves), "transaction records of an unfinished block survived"
    assert sum(1 for _ in chain.store.iterate(LOG_PREFIX + b"n\x00")) == len(leaves)
    return chain.height


@pytest.mark.integration
def test_sigkill_at_random_instants_leaves_a_whole_block(tmp_path: Path, shared_dir: Path) -> None:
    rng = random.Random(20261126)
    store_dir = tmp_path / "store"
    sample = shared_dir / "samples" / "tradetrust_chafta_coo_raw_v2.json"
    alliance = make_alliance(4)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    heights = []
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(store_dir), str(sample)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        assert child.stdout is not None
        # Wait for at least one commit, then kill at a random instant within the next blocks.
        first = child.stdout.readline()
        if not first:
            _, err = child.communicate()
            pytest.fail(f"crash child died before its first commit: {err.decode()[-2000:]}")
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.communicate()
        store = LevelDBStore(store_dir)
        try:
            heights.append(check_whole_block(alliance.chain(store)))
        finally:
            store.close()
    assert len(heights) == KILLS
    assert heights == sorted(heights) and heights[-1] >= KILLS
