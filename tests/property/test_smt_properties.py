"""Properties of the state tree: the persisted tree equals the plain rule, proofs are sound."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.encoding import H
from ledger.errors import StateProofError, StoreCorruptError
from ledger.smt import (
    NodeCache,
    StateProof,
    StateTree,
    compute_root_naive,
    verify_state_proof,
)
from ledger.store import MemoryStore, Overlay, WriteBatch

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def flip_bit(key: bytes, bit: int) -> bytes:
    value = int.from_bytes(key, "big") ^ (1 << (255 - bit))
    return value.to_bytes(32, "big")


@st.composite
def key_pool(draw: st.DrawFn) -> list[bytes]:
    """Random keys plus neighbours that share a long prefix with one of them."""
    base = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=12, unique=True))
    flips = draw(st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 255)), max_size=10))
    pool = list(base)
    for index, bit in flips:
        pool.append(flip_bit(pool[index], bit))
    # Always a pair diverging only at the deepest bits, where chains are longest.
    pool.append(flip_bit(base[0], 255))
    pool.append(flip_bit(base[0], 250))
    return list(dict.fromkeys(pool))


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[bytes], list[dict[bytes, bytes]]]:
    pool = draw(key_pool())
    batches = draw(
        st.lists(
            st.dictionaries(st.sampled_from(pool), st.binary(max_size=8), max_size=len(pool)),
            min_size=1,
            max_size=5,
        )
    )
    return pool, batches


def all_proofs_check(tree: StateTree, pool: list[bytes], state: dict[bytes, bytes], root: bytes) -> None:
    for key in pool:
        proof = tree.prove(key)
        if key in state:
            verify_state_proof(key, state[key], proof, root)
            with pytest.raises(StateProofError):
                verify_state_proof(key, None, proof, root)
        else:
            verify_state_proof(key, None, proof, root)
            with pytest.raises(StateProofError):
                verify_state_proof(key, b"", proof, root)
        assert StateProof.from_json(proof.to_json()) == proof


@SETTINGS
@given(histories())
def test_persisted_tree_matches_naive_root_after_every_batch(history: tuple[list[bytes], list[dict[bytes, bytes]]]) -> None:
    pool, batches = history
    store = MemoryStore()
    state: dict[bytes, bytes] = {}
    for items in batches:
        batch = WriteBatch()
        root = StateTree(Overlay(store, batch)).update(batch, items)
        store.write(batch)
        state.update(items)
        assert root == compute_root_naive(state)
        tree = StateTree(store)
        assert tree.root() == root
        for key in pool:
            assert tree.get(key) == state.get(key)
        all_proofs_check(tree, pool, state, root)


@SETTINGS
@given(histories(), st.data())
def test_tampered_proofs_are_rejected(history: tuple[list[bytes], list[dict[bytes, bytes]]], data: st.DataObject) -> None:
    pool, batches = history
    store = MemoryStore()
    state: dict[bytes, bytes] = {}
    for items in batches:
        batch = WriteBatch()
        StateTree(Overlay(store, batch)).update(batch, items)
        store.write(batch)
        state.update(items)
    tree = StateTree(store)
    root = tree.root()
    key = data.draw(st.sampled_from(pool))
    value = state.get(key)
    proof = tree.prove(key)
    verify_state_proof(key, value, proof, root)

    tampered: list[StateProof] = []
    siblings = list(proof.siblings)
    if siblings:
        index = data.draw(st.integers(0, len(siblings) - 1))
        byte = data.draw(st.integers(0, 31))
        changed = bytearray(siblings[index])
        changed[byte] ^= 1 << data.draw(st.integers(0, 7))
        tampered.append(StateProof(proof.leaf, tuple(siblings[:index] + [bytes(changed)] + siblings[index + 1:])))
        tampered.append(StateProof(proof.leaf, tuple(siblings[:-1])))
    tampered.append(StateProof(proof.leaf, (*siblings, H(b"extra"))))
    tampered.append(StateProof(proof.leaf, (bytes(32), *siblings)))
    other = data.draw(st.sampled_from(pool))
    if other != key or proof.leaf is None:
        tampered.append(StateProof((other, H(b"forged")), proof.siblings))
    if proof.leaf is not None:
        tampered.append(StateProof(None, proof.siblings))
        tampered.append(StateProof((proof.leaf[0], H(proof.leaf[1])), proof.siblings))
    for bad in tampered:
        with pytest.raises(StateProofError):
            verify_state_proof(key, value, bad, root)

    with pytest.raises(StateProofError):
        verify_state_proof(key, value, proof, H(root))
    if value is not None:
        with pytest.raises(StateProofError):
            verify_state_proof(key, value + b"x", proof, root)
        with pytest.raises(StateProofError):
            verify_state_proof(key, None, proof, root)
    else:
        with pytest.raises(StateProofError):
            verify_state_proof(key, b"x", proof, root)


@SETTINGS
@given(histories())
def test_batch_split_does_not_change_root(history: tuple[list[bytes], list[dict[bytes, bytes]]]) -> None:
    _, batches = history
    final: dict[bytes, bytes] = {}
    for items in batches:
        final.update(items)
    one = MemoryStore()
    batch = WriteBatch()
    root = StateTree(Overlay(one, batch)).update(batch, final)
    assert root == compute_root_naive(final)
    many = MemoryStore()
    for key, value in final.items():
        batch = WriteBatch()
        StateTree(Overlay(many, batch)).update(batch, {key: value})
        many.write(batch)
    assert StateTree(many).root() == root


@st.composite
def page_histories(draw: st.DrawFn) -> tuple[list[bytes], list[tuple[dict[bytes, bytes], bool]]]:
    """Batches over a pool of keys sharing prefixes of every length, each kept or discarded."""
    base = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=6, unique=True))
    # Neighbours parting at page boundaries (multiples of 4) and just around them.
    bits = st.one_of(st.integers(0, 255), st.sampled_from([3, 4, 5, 7, 8, 11, 12, 15, 16, 19, 20, 251, 252, 255]))
    flips = draw(st.lists(st.tuples(st.integers(0, len(base) - 1), bits), max_size=14))
    pool = list(base)
    for index, bit in flips:
        pool.append(flip_bit(pool[index], bit))
    pool = list(dict.fromkeys(pool))
    batches = draw(
        st.lists(
            st.tuples(st.dictionaries(st.sampled_from(pool), st.binary(max_size=4), max_size=len(pool)), st.booleans()),
            min_size=1,
            max_size=6,
        )
    )
    return pool, batches


@SETTINGS
@given(page_histories(), st.sampled_from([(1 << 17, 24), (2, 24), (1 << 17, 0), (3, 8), (1 << 17, 300)]))
def test_paged_tree_with_shared_cache_and_discarded_batches_matches_naive(
    history: tuple[list[bytes], list[tuple[dict[bytes, bytes], bool]]], cache_shape: tuple[int, int]
) -> None:
    pool, batches = history
    capacity, cache_depth = cache_shape
    store = MemoryStore()
    cache = NodeCache(capacity)  # shared by every tree, the discarded ones too
    state: dict[bytes, bytes] = {}
    for items, keep in batches:
        batch = WriteBatch()
        tree = StateTree(Overlay(store, batch), cache=cache, cache_depth=cache_depth)
        root = tree.update(batch, items)
        assert root == compute_root_naive(state | items)
        # The uncommitted tree answers from its batch: proofs against the new root verify.
        all_proofs_check(tree, pool, state | items, root)
        if keep:
            store.write(batch)
            state.update(items)
        # The written state, through the shared (possibly warmed-by-a-discarded-batch) cache
        # and through a cold one, as a node freshly started on this store would see it.
        expected = compute_root_naive(state)
        for view in (StateTree(store, cache=cache, cache_depth=cache_depth), StateTree(store)):
            assert view.root() == expected
            all_proofs_check(view, pool, state, expected)
            for key in pool:
                assert view.get(key) == state.get(key)
    # The store holds exactly the live tree's pages: one at every page depth on every key's path.
    cold = StateTree(store)
    expected_pages = set()
    for key in state:
        depth = len(cold.prove(key).siblings)
        expected_pages |= {cold.page_key(page_depth, key) for page_depth in range(0, depth + 1, 4)}
    assert {key for key in store.data if key.startswith(b"smt/p")} == expected_pages


# --- deep chains, larger trees, damaged stores ----------------------------------------


def build_in_one_batch(state: dict[bytes, bytes]) -> MemoryStore:
    store = MemoryStore()
    batch = WriteBatch()
    StateTree(Overlay(store, batch)).update(batch, state)
    store.write(batch)
    return store


def assert_same_as_one_batch(store: MemoryStore, state: dict[bytes, bytes]) -> None:
    """The store holds exactly what one batch of the whole state writes: the page layout
    is a function of the keys, however the updates came."""
    assert store.data == build_in_one_batch(state).data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.lists(st.integers(0, 255), min_size=1, max_size=12), st.booleans())
def test_deep_chains_match_naive(key: bytes, bits: list[int], together: bool) -> None:
    # Keys differing only deep down: long one-sided chains, split within a page and across
    # page boundaries, inserted in one batch or one key at a time.
    keys = [key]
    for bit in bits:
        keys.append(flip_bit(keys[-1] if bit % 2 else key, max(bit, 200)))
    keys = list(dict.fromkeys(keys))
    store = MemoryStore()
    state: dict[bytes, bytes] = {}
    batches = [dict.fromkeys(keys, b"v")] if together else [{item: b"v"} for item in keys]
    for items in [*batches, {item: b"w" for item in keys[::2]}]:
        batch = WriteBatch()
        root = StateTree(Overlay(store, batch)).update(batch, items)
        store.write(batch)
        state.update(items)
        assert root == compute_root_naive(state)
    assert_same_as_one_batch(store, state)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=50, max_size=400, unique=True),
    key_pool(),
    st.lists(st.integers(1, 200), min_size=1, max_size=4),
    st.sampled_from([(1 << 17, 24), (2, 24), (1 << 17, 0), (3, 8), (1 << 17, 300), (1, 4), (5, -3)]),
)
def test_larger_trees_match_naive(
    bulk: list[bytes], pool: list[bytes], sizes: list[int], cache_shape: tuple[int, int]
) -> None:
    # A tree several pages deep, then batches of its keys, of new keys and of close neighbours.
    capacity, cache_depth = cache_shape
    store = MemoryStore()
    cache = NodeCache(capacity)
    state: dict[bytes, bytes] = {}
    candidates = bulk + pool + [flip_bit(key, 255) for key in bulk[:20]] + [flip_bit(key, 20) for key in bulk[:20]]
    rounds = [{key: key[:7] for key in bulk}]
    for round_number, size in enumerate(sizes):
        chosen = candidates[round_number * 37 % len(candidates):][:size] or candidates[:size]
        rounds.append({key: bytes([round_number]) * (1 + len(key) % 5) for key in chosen})
    for items in rounds:
        batch = WriteBatch()
        root = StateTree(Overlay(store, batch), cache=cache, cache_depth=cache_depth).update(batch, items)
        store.write(batch)
        state.update(items)
        assert root == compute_root_naive(state)
    assert_same_as_one_batch(store, state)


def written_tree(count: int) -> tuple[MemoryStore, list[bytes]]:
    keys = [H(f"doc-{i}".encode()) for i in range(count)]
    return build_in_one_batch(dict.fromkeys(keys, b"v")), keys


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([0, 4, 8]), st.integers(0, 10_000), st.sampled_from(["flip", "drop", "truncate", "extend"]))
def test_damaged_store_page_raises_store_corrupt(depth: int, where: int, kind: str) -> None:
    store, keys = written_tree(300)
    on_pages = [key for key in keys if StateTree(store).page_key(depth, key) in store.data]
    key = on_pages[where % len(on_pages)]
    page_key = StateTree(store).page_key(depth, key)
    raw = store.data[page_key]
    if kind == "flip":
        at = where % len(raw)
        store.data[page_key] = raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1:]
    elif kind == "drop":
        del store.data[page_key]
    elif kind == "truncate":
        store.data[page_key] = raw[:where % len(raw)]
    else:
        store.data[page_key] = raw + raw[-65:]
    batch = WriteBatch()
    tree = StateTree(Overlay(store, batch), cache=NodeCache())  # cold: the page is read from the store
    with pytest.raises(StoreCorruptError):
        tree.update(batch, {key: b"w"})
    with pytest.raises(StoreCorruptError):
        StateTree(store, cache=NodeCache()).prove(key)
