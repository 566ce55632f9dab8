"""Unit tests of the state tree: edge shapes, persistence, proofs' JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.encoding import H
from ledger.errors import StateProofError, StoreCorruptError
from ledger.smt import (
    EMPTY_HASH,
    NodeCache,
    StateProof,
    StateTree,
    compute_internal_hash,
    compute_leaf_hash,
    compute_root_naive,
    verify_state_proof,
)
from ledger.store import LevelDBStore, MemoryStore, Overlay, WriteBatch

KEY_A = bytes(32)
KEY_B = bytes(31) + b"\x01"  # differs from KEY_A only at bit 255


def apply(store: MemoryStore | LevelDBStore, items: dict[bytes, bytes], cache: NodeCache | None = None) -> bytes:
    batch = WriteBatch()
    root = StateTree(Overlay(store, batch), cache=cache).update(batch, items)
    store.write(batch)
    return root


def test_empty_tree_root_is_zero_hash() -> None:
    tree = StateTree(MemoryStore())
    assert tree.root() == EMPTY_HASH == bytes(32)
    assert compute_root_naive({}) == EMPTY_HASH
    proof = tree.prove(KEY_A)
    assert proof == StateProof(leaf=None, siblings=())
    verify_state_proof(KEY_A, None, proof, EMPTY_HASH)


def test_single_key_root_is_its_leaf() -> None:
    store = MemoryStore()
    root = apply(store, {KEY_A: b"v"})
    assert root == compute_leaf_hash(KEY_A, H(b"v")) == compute_root_naive({KEY_A: b"v"})
    tree = StateTree(store)
    assert tree.get(KEY_A) == b"v"
    assert tree.get(KEY_B) is None
    verify_state_proof(KEY_A, b"v", tree.prove(KEY_A), root)
    absence = tree.prove(KEY_B)
    assert absence.leaf == (KEY_A, H(b"v"))
    verify_state_proof(KEY_B, None, absence, root)


def test_two_keys_diverging_at_bit_255_make_a_full_chain() -> None:
    store = MemoryStore()
    root = apply(store, {KEY_A: b"a", KEY_B: b"b"})
    expected = compute_internal_hash(compute_leaf_hash(KEY_A, H(b"a")), compute_leaf_hash(KEY_B, H(b"b")))
    for _ in range(255):
        expected = compute_internal_hash(expected, EMPTY_HASH)
    assert root == expected == compute_root_naive({KEY_A: b"a", KEY_B: b"b"})
    tree = StateTree(store)
    proof = tree.prove(KEY_B)
    assert len(proof.siblings) == 256
    verify_state_proof(KEY_B, b"b", proof, root)
    verify_state_proof(KEY_A, b"a", tree.prove(KEY_A), root)
    assert StateProof.from_json(proof.to_json()) == proof


def test_two_keys_inserted_one_batch_at_a_time() -> None:
    store = MemoryStore()
    apply(store, {KEY_B: b"b"})
    root = apply(store, {KEY_A: b"a"})
    assert root == compute_root_naive({KEY_A: b"a", KEY_B: b"b"})


def test_update_of_existing_key_replaces_value() -> None:
    store = MemoryStore()
    keys = [H(str(i).encode()) for i in range(50)]
    apply(store, {key: b"old" for key in keys})
    root = apply(store, {keys[7]: b"new"})
    expected = {key: b"old" for key in keys} | {keys[7]: b"new"}
    assert root == compute_root_naive(expected)
    tree = StateTree(store)
    assert tree.get(keys[7]) == b"new"
    verify_state_proof(keys[7], b"new", tree.prove(keys[7]), root)
    with pytest.raises(StateProofError):
        verify_state_proof(keys[7], b"old", tree.prove(keys[7]), root)


def test_leveldb_round_trip_with_reopen(tmp_path: Path) -> None:
    items = {H(f"doc-{i}".encode()): f"value-{i}".encode() for i in range(300)}
    store = LevelDBStore(tmp_path / "db")
    apply(store, dict(list(items.items())[:150]))
    root = apply(store, dict(list(items.items())[150:]))
    store.close()
    reopened = LevelDBStore(tmp_path / "db")
    try:
        tree = StateTree(reopened)
        assert tree.root() == root == compute_root_naive(items)
        for key, value in list(items.items())[::37]:
            assert tree.get(key) == value
            verify_state_proof(key, value, tree.prove(key), root)
        verify_state_proof(H(b"missing"), None, tree.prove(H(b"missing")), root)
    finally:
        reopened.close()


def test_unwritten_batch_leaves_store_unchanged() -> None:
    store = MemoryStore()
    cache = NodeCache()
    root = apply(store, {H(b"a"): b"1", H(b"b"): b"2"}, cache)
    before = dict(store.data)
    batch = WriteBatch()
    new_root = StateTree(Overlay(store, batch), cache=cache).update(batch, {H(b"c"): b"3", H(b"a"): b"9"})
    assert new_root != root
    assert store.data == before
    # The same cache, warmed by the discarded update, must still serve the written state.
    tree = StateTree(store, cache=cache)
    assert tree.root() == root
    assert tree.get(H(b"a")) == b"1"
    verify_state_proof(H(b"a"), b"1", tree.prove(H(b"a")), root)
    verify_state_proof(H(b"c"), None, tree.prove(H(b"c")), root)
    assert apply(store, {H(b"d"): b"4"}, cache) == compute_root_naive({H(b"a"): b"1", H(b"b"): b"2", H(b"d"): b"4"})


def test_empty_update_returns_current_root_and_writes_nothing() -> None:
    store = MemoryStore()
    root = apply(store, {KEY_A: b"a"})
    batch = WriteBatch()
    assert StateTree(store).update(batch, {}) == root
    assert len(batch) == 0


def test_update_rejects_wrong_key_length() -> None:
    with pytest.raises(ValueError, match="32-byte key"):
        StateTree(MemoryStore()).update(WriteBatch(), {b"short": b"v"})


def test_missing_node_is_reported_as_corrupt_store() -> None:
    store = MemoryStore()
    apply(store, {KEY_A: b"a", KEY_B: b"b"})
    page_key = StateTree(store).page_key(3, KEY_A)
    del store.data[page_key]
    with pytest.raises(StoreCorruptError):
        StateTree(store).prove(KEY_A)


def corrupt_variants(record: bytes, other: bytes) -> list[bytes]:
    flipped_first = bytes([record[0] ^ 0x01]) + record[1:]
    flipped_hash = record[:40] + bytes([record[40] ^ 0x80]) + record[41:]
    flipped_last = record[:-1] + bytes([record[-1] ^ 0x01])
    return [
        flipped_first, flipped_hash, flipped_last, record[:-1], record[:-65], record + b"\x00",
        record + record[-65:], b"", other,
    ]


@pytest.mark.parametrize("variant", range(9))
@pytest.mark.parametrize("depth", [0, 4, 8])
def test_corrupted_page_record_is_reported_as_corrupt_store(depth: int, variant: int) -> None:
    keys = [H(f"doc-{i}".encode()) for i in range(400)]
    store = MemoryStore()
    root = apply(store, {key: b"v" for key in keys})
    key = keys[0]
    page_key = StateTree(store).page_key(depth, key)
    other_key = StateTree(store).page_key(depth, next(k for k in keys if k[0] >> 4 != key[0] >> 4))
    if depth == 0:
        other_key = StateTree(store).page_key(4, key)
    assert page_key in store.data and other_key in store.data and page_key != other_key
    store.data[page_key] = corrupt_variants(store.data[page_key], store.data[other_key])[variant]
    # Cold cache: the damaged page is read from the store on the way to the key.
    with pytest.raises(StoreCorruptError):
        StateTree(store).prove(key)
    batch = WriteBatch()
    with pytest.raises(StoreCorruptError):
        StateTree(Overlay(store, batch)).update(batch, {key: b"w"})
    if depth:  # keys whose paths avoid the damaged page are still served
        far = next(k for k in keys if StateTree(store).page_key(depth, k) != page_key)
        verify_state_proof(far, b"v", StateTree(store).prove(far), root)


def test_pages_read_from_the_store_are_cached_by_root_hash() -> None:
    store = MemoryStore()
    keys = [H(f"doc-{i}".encode()) for i in range(100)]
    apply(store, {key: b"v" for key in keys})
    cache = NodeCache()
    tree = StateTree(store, cache=cache)
    tree.prove(keys[0])
    assert len(cache) >= 2
    # The cache keys are the pages' root hashes: the root page is cached under the root.
    assert cache.get(tree.root()) is not None


def test_store_in_the_node_per_record_layout_is_named_in_the_error() -> None:
    store = MemoryStore()
    store.data[b"smt/r"] = compute_leaf_hash(KEY_A, H(b"a"))
    store.data[b"smt/n\x00\x00"] = b"\x00" + KEY_A + H(b"a")  # the root node, as stored before pages
    with pytest.raises(StoreCorruptError, match="one record per node"):
        StateTree(store).prove(KEY_A)


def test_prefixes_keep_trees_apart() -> None:
    store = MemoryStore()
    batch = WriteBatch()
    StateTree(Overlay(store, batch), prefix=b"one/").update(batch, {KEY_A: b"1"})
    StateTree(Overlay(store, batch), prefix=b"two/").update(batch, {KEY_B: b"2"})
    store.write(batch)
    assert StateTree(store, prefix=b"one/").get(KEY_B) is None
    assert StateTree(store, prefix=b"two/").root() == compute_root_naive({KEY_B: b"2"})


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        {"leaf": None},
        {"leaf": None, "siblings": [], "extra": 1},
        {"leaf": None, "siblings": "00" * 32},
        {"leaf": None, "siblings": ["00" * 31]},
        {"leaf": None, "siblings": ["AA" * 32]},
        {"leaf": None, "siblings": ["zz" * 32]},
        {"leaf": None, "siblings": [b"\x00" * 32]},
        {"leaf": None, "siblings": ["00" * 32] * 257},
        {"leaf": {"key": "00" * 32}, "siblings": []},
        {"leaf": {"key": "00" * 32, "value_hash": "00" * 32, "x": 1}, "siblings": []},
        {"leaf": {"key": "00" * 33, "value_hash": "00" * 32}, "siblings": []},
        {"leaf": ["00" * 32, "00" * 32], "siblings": []},
    ],
)
def test_from_json_rejects_malformed_proofs(obj: object) -> None:
    with pytest.raises(StateProofError):
        StateProof.from_json(obj)


def test_from_json_accepts_256_siblings() -> None:
    proof = StateProof.from_json({"leaf": None, "siblings": ["00" * 32] * 256})
    assert len(proof.siblings) == 256


def test_verify_rejects_malformed_proof_objects() -> None:
    with pytest.raises(StateProofError):
        verify_state_proof(KEY_A, None, StateProof(leaf=None, siblings=(b"\x00",)), EMPTY_HASH)
    with pytest.raises(StateProofError):
        verify_state_proof(KEY_A, None, StateProof(leaf=None, siblings=(EMPTY_HASH,) * 257), EMPTY_HASH)
    with pytest.raises(StateProofError):
        verify_state_proof(b"short", None, StateProof(leaf=None, siblings=()), EMPTY_HASH)
