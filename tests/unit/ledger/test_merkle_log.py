"""The persisted RFC 9162 log on a real LevelDB: layout, reopening, misuse, corruption."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.errors import StoreCorruptError
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.store import LevelDBStore, MemoryStore, Overlay, WriteBatch


def leaves(start: int, stop: int) -> list[bytes]:
    return [b"envelope-%d" % i for i in range(start, stop)]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[LevelDBStore]:
    store = LevelDBStore(tmp_path / "db")
    yield store
    store.close()


def append_block(store: LevelDBStore | MemoryStore, data: list[bytes], prefix: bytes = b"log/") -> MerkleLog:
    """Append ``data`` in one batch and commit it, as a block would."""
    batch = WriteBatch()
    log = MerkleLog(Overlay(store, batch), prefix=prefix)
    for item in data:
        log.append(batch, item)
    store.write(batch)
    return MerkleLog(store, prefix=prefix)


def test_new_log_is_empty(db: LevelDBStore) -> None:
    log = MerkleLog(db)
    assert log.size == 0
    assert log.root() == EMPTY_ROOT
    assert log.root(0) == EMPTY_ROOT
    assert log.consistency_proof(0) == []
    with pytest.raises(ValueError, match="expected a leaf index"):
        log.inclusion_proof(0)
    with pytest.raises(ValueError, match="expected a leaf index"):
        log.leaf_hash_at(0)


def test_storage_layout_is_the_documented_keys(db: LevelDBStore) -> None:
    data = leaves(0, 3)
    append_block(db, data)
    stored = dict(db.iterate(b"log/"))
    h0, h1, h2 = (leaf_hash(d) for d in data)

    def key(level: int, index: int) -> bytes:
        return b"log/n" + bytes([level]) + index.to_bytes(8, "big")

    # Leaves at level 0, the one complete pair at level 1, nothing for the ragged edge.
    assert stored == {
        key(0, 0): h0, key(0, 1): h1, key(0, 2): h2,
        key(1, 0): node_hash(h0, h1),
        b"log/size": (3).to_bytes(8, "big"),
    }


def test_log_continues_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db"
    everything = leaves(0, 300)
    store = LevelDBStore(path)
    append_block(store, everything[:100])
    append_block(store, everything[100:137])
    old_root = MerkleLog(store).root()
    store.close()

    store = LevelDBStore(path)
    try:
        log = append_block(store, everything[137:])
        assert log.size == 300
        assert log.root() == merkle_root(everything)
        assert log.root(137) == old_root == merkle_root(everything[:137])
        for index in (0, 99, 100, 136, 137, 255, 256, 299):
            proof = log.inclusion_proof(index)
            assert proof == inclusion_proof(everything, index)
            verify_inclusion(everything[index], index, 300, proof, log.root())
        proof = log.consistency_proof(137)
        assert proof == consistency_proof(everything, 137)
        verify_consistency(137, 300, proof, old_root, log.root())
    finally:
        store.close()

    store = LevelDBStore(path)
    try:
        log = MerkleLog(store)
        assert log.inclusion_proof(200, 256) == inclusion_proof(everything[:256], 200)
        assert log.leaf_hash_at(299) == leaf_hash(everything[299])
    finally:
        store.close()


def test_many_appends_in_one_batch_and_one_object_across_commits(db: LevelDBStore) -> None:
    everything = leaves(0, 1030)
    log = MerkleLog(db)
    position = 0
    for block_size in (1, 1, 2, 500, 3, 511, 12):
        batch = WriteBatch()
        log = MerkleLog(Overlay(db, batch))
        for item in everything[position:position + block_size]:
            assert log.append(batch, item) == position
            position += 1
        assert log.root() == merkle_root(everything[:position])
        db.write(batch)
    assert MerkleLog(db).root() == merkle_root(everything[:position])


def test_two_prefixes_in_one_batch_are_independent(db: LevelDBStore) -> None:
    batch = WriteBatch()
    first = MerkleLog(Overlay(db, batch), prefix=b"a/")
    second = MerkleLog(Overlay(db, batch), prefix=b"b/")
    for index, item in enumerate(leaves(0, 20)):
        first.append(batch, item)
        if index % 2:
            second.append(batch, item)
    db.write(batch)
    assert MerkleLog(db, prefix=b"a/").root() == merkle_root(leaves(0, 20))
    assert MerkleLog(db, prefix=b"b/").root() == merkle_root(leaves(0, 20)[1::2])


def test_size_and_proof_arguments_out_of_range_are_refused(db: LevelDBStore) -> None:
    log = append_block(db, leaves(0, 5))
    with pytest.raises(ValueError, match="expected a tree size"):
        log.root(6)
    with pytest.raises(ValueError, match="expected a tree size"):
        log.inclusion_proof(0, 6)
    with pytest.raises(ValueError, match="expected a leaf index"):
        log.inclusion_proof(3, 3)
    with pytest.raises(ValueError, match="expected an old size"):
        log.consistency_proof(4, 3)
    with pytest.raises(ValueError, match="expected a leaf index"):
        log.leaf_hash_at(-1)


# --- regressions ---------------------------------------------------------------


def test_discarded_batch_does_not_leave_a_stale_frontier() -> None:
    """An object appends 3 leaves to a block that is dropped; another writer commits a
    different block of 3; the first object appends again. Sizes agree (7), contents do
    not: the frontier cached from the dropped batch must not be merged into leaf 7."""
    store = MemoryStore()
    append_block(store, leaves(0, 4))
    overlay = Overlay(store, WriteBatch())
    log = MerkleLog(overlay)
    dropped = overlay.batch
    for item in leaves(100, 103):
        log.append(dropped, item)

    append_block(store, leaves(200, 203))  # the block that won
    kept = WriteBatch()
    overlay.batch = kept
    assert log.append(kept, b"next") == 7
    store.write(kept)
    expected = leaves(0, 4) + leaves(200, 203) + [b"next"]
    assert MerkleLog(store).root() == merkle_root(expected)


def test_append_through_a_reader_that_misses_the_batch_is_refused(db: LevelDBStore) -> None:
    """Rebuilding the frontier from storage without the batch would overwrite leaf 0."""
    batch = WriteBatch()
    log = MerkleLog(db)  # wrong: should be Overlay(db, batch)
    log.append(batch, b"first")
    with pytest.raises(ValueError, match="sees the batch"):
        # A second object is needed: the first one's frontier is still current.
        MerkleLog(db).append(batch, b"second")


def test_other_writer_in_same_batch_invalidates_frontier(db: LevelDBStore) -> None:
    batch = WriteBatch()
    one = MerkleLog(Overlay(db, batch))
    two = MerkleLog(Overlay(db, batch))
    one.append(batch, b"a")
    two.append(batch, b"b")
    one.append(batch, b"c")
    db.write(batch)
    assert MerkleLog(db).root() == merkle_root([b"a", b"b", b"c"])


def test_missing_node_is_reported_as_store_corruption(db: LevelDBStore) -> None:
    append_block(db, leaves(0, 4))
    batch = WriteBatch()
    batch.delete(b"log/n\x01" + (1).to_bytes(8, "big"))
    db.write(batch)
    log = MerkleLog(db)
    with pytest.raises(StoreCorruptError, match=r"level 1, index 1"):
        log.inclusion_proof(0)
    with pytest.raises(StoreCorruptError):
        log.consistency_proof(2, 4)
    # Reads that do not need the lost node still work: root(3) is (1, 0) and (0, 2).
    assert log.root(3) == merkle_root(leaves(0, 3))


def test_malformed_size_record_is_reported_as_store_corruption(db: LevelDBStore) -> None:
    batch = WriteBatch()
    batch.put(b"log/size", b"\x01")
    db.write(batch)
    with pytest.raises(StoreCorruptError, match="8-byte"):
        _ = MerkleLog(db).size


def test_root_at_power_of_two_boundaries(db: LevelDBStore) -> None:
    everything = leaves(0, 130)
    log = append_block(db, everything)
    for size in (1, 2, 3, 4, 63, 64, 65, 127, 128, 129, 130):
        assert log.root(size) == merkle_root(everything[:size])
