"""The compiled tree walk (ledger/_smtpage.c) against its Python specification.

:meth:`StateTree.update_reference` and :func:`ledger.smt_store.parse_page` are the
specification. Twin trees, one updated by each walk, must agree on everything an update
touches: the root, every entry of the batch (in the same order), and both generations of
the cache.
"""

from __future__ import annotations

import hashlib
import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import smt_store
from ledger.errors import StoreCorruptError
from ledger.smt import NodeCache, StateTree, compute_root_naive
from ledger.smt_store import parse_page
from ledger.store import MemoryStore, Overlay, WriteBatch

native = importlib.import_module("ledger._smtpage")

DIFFERENTIAL = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHEAP = settings(max_examples=500, deadline=None)


def flip_bit(key: bytes, bit: int) -> bytes:
    return (int.from_bytes(key, "big") ^ (1 << (255 - bit))).to_bytes(32, "big")


# Bits around page boundaries (multiples of 4) and the last ones, where chains are longest.
PARTING_BITS = st.one_of(
    st.integers(0, 255), st.sampled_from([0, 1, 3, 4, 5, 7, 8, 11, 12, 15, 16, 19, 20, 24, 251, 252, 253, 254, 255])
)


@st.composite
def key_pools(draw: st.DrawFn) -> list[bytes]:
    """Random keys, and neighbours of them (and of neighbours) parting at any bit."""
    base = draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=10, unique=True))
    pool = list(base)
    for _ in range(draw(st.integers(0, 16))):
        pool.append(flip_bit(draw(st.sampled_from(pool)), draw(PARTING_BITS)))
    if draw(st.booleans()):  # a run of keys differing only in their last bits
        low = draw(st.sampled_from(base))
        pool += [low[:31] + bytes([(low[31] & 0xF0) | n]) for n in range(16)]
    return list(dict.fromkeys(pool))


Batch = tuple[dict[bytes, bytes], bool]  # items, and whether the batch is written


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[bytes], list[Batch]]:
    pool = draw(key_pools())
    values = st.binary(max_size=80)
    batch = st.one_of(
        st.dictionaries(st.sampled_from(pool), values, min_size=1, max_size=1),  # the common walk_one path
        st.dictionaries(st.sampled_from(pool), values, max_size=len(pool)),
    )
    batches = draw(st.lists(st.tuples(batch, st.booleans() | st.just(True)), min_size=1, max_size=7))
    return pool, batches


CACHE_SHAPES = st.sampled_from([(1 << 17, 24), (2, 24), (1 << 17, 0), (3, 8), (1 << 17, 300), (1, 4), (5, -3)])


class Twins:
    """Two stores and two caches, the same at every step: one updated by each walk."""

    def __init__(self, capacity: int, cache_depth: int) -> None:
        self.cache_depth = cache_depth
        self.stores = (MemoryStore(), MemoryStore())
        self.caches = (NodeCache(capacity), NodeCache(capacity))
        self.state: dict[bytes, bytes] = {}

    def step(self, items: dict[bytes, bytes], keep: bool) -> bytes:
        roots = []
        batches = []
        for index, (store, cache) in enumerate(zip(self.stores, self.caches, strict=True)):
            batch = WriteBatch()
            tree = StateTree(Overlay(store, batch), cache=cache, cache_depth=self.cache_depth)
            roots.append(tree.update(batch, items) if index == 0 else tree.update_reference(batch, items))
            batches.append(batch)
        compiled, reference = batches
        assert roots[0] == roots[1]
        # Same entries, same bytes, and even the same order: the walks visit pages alike.
        assert list(compiled.ops.items()) == list(reference.ops.items())
        assert list(self.caches[0].young.items()) == list(self.caches[1].young.items())
        assert list(self.caches[0].old.items()) == list(self.caches[1].old.items())
        if keep:
            for store, batch in zip(self.stores, batches, strict=True):
                store.write(batch)
            self.state.update(items)
        assert roots[0] == compute_root_naive(self.state if keep else self.state | items)
        assert self.stores[0].data == self.stores[1].data
        return roots[0]


@DIFFERENTIAL
@given(histories(), CACHE_SHAPES)
def test_compiled_update_equals_reference(history: tuple[list[bytes], list[Batch]], cache_shape: tuple[int, int]) -> None:
    _, batches = history
    twins = Twins(*cache_shape)
    for items, keep in batches:
        twins.step(items, keep)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=50, max_size=400, unique=True),
    key_pools(),
    st.lists(st.integers(1, 200), min_size=1, max_size=4),
    CACHE_SHAPES,
)
def test_compiled_update_equals_reference_on_larger_trees(
    bulk: list[bytes], pool: list[bytes], sizes: list[int], cache_shape: tuple[int, int]
) -> None:
    # A tree several pages deep, then batches of its keys, of new keys and of close neighbours.
    twins = Twins(*cache_shape)
    twins.step({key: key[:7] for key in bulk}, True)
    candidates = bulk + pool + [flip_bit(key, 255) for key in bulk[:20]] + [flip_bit(key, 20) for key in bulk[:20]]
    for round_number, size in enumerate(sizes):
        chosen = candidates[round_number * 37 % len(candidates):][:size] or candidates[:size]
        twins.step({key: bytes([round_number]) * (1 + len(key) % 5) for key in chosen}, True)


@DIFFERENTIAL
@given(st.binary(min_size=32, max_size=32), st.lists(st.integers(0, 255), min_size=1, max_size=12), st.booleans())
def test_compiled_update_equals_reference_on_deep_chains(key: bytes, bits: list[int], together: bool) -> None:
    # Keys differing only deep down: long one-sided chains, split within a page and across
    # page boundaries, inserted in one batch or one key at a time.
    keys = [key]
    for bit in bits:
        keys.append(flip_bit(keys[-1] if bit % 2 else key, max(bit, 200)))
    keys = list(dict.fromkeys(keys))
    twins = Twins(1 << 17, 24)
    if together:
        twins.step(dict.fromkeys(keys, b"v"), True)
    else:
        for item in keys:
            twins.step({item: b"v"}, True)
    twins.step({item: b"w" for item in keys[::2]}, True)


# --- SHA-256 -------------------------------------------------------------------------

BLOCK_EDGES = st.sampled_from([0, 1, 31, 32, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000])


@CHEAP
@given(st.one_of(st.binary(max_size=300), BLOCK_EDGES.flatmap(lambda n: st.binary(min_size=n, max_size=n))))
def test_compiled_sha256_equals_hashlib(data: bytes) -> None:
    expected = hashlib.sha256(data).digest()
    assert native.sha256(data) == expected
    assert native.sha256_portable(data) == expected  # the fallback for CPUs without SHA instructions
    assert native.sha256(bytearray(data)) == expected


# --- parse_page ----------------------------------------------------------------------


def stored_pages(store: MemoryStore) -> list[tuple[bytes, bytes]]:
    """(page, its root hash) for every page of the tree in ``store``."""
    return [
        (raw, hashlib.sha256(raw[2:67]).digest())
        for key, raw in sorted(store.data.items())
        if key.startswith(b"smt/p")
    ]


@st.composite
def pages(draw: st.DrawFn) -> tuple[bytes, bytes]:
    pool = draw(key_pools())
    store = MemoryStore()
    batch = WriteBatch()
    StateTree(Overlay(store, batch)).update(batch, {key: b"x" for key in pool})
    store.write(batch)
    return draw(st.sampled_from(stored_pages(store)))


def both_parse(raw: bytes, root_hash: bytes) -> bytes | None:
    expected = parse_page(raw, root_hash)
    got = native.parse_page(raw, root_hash)
    assert got == expected
    return expected


@CHEAP
@given(pages())
def test_compiled_parse_page_accepts_valid_pages(page: tuple[bytes, bytes]) -> None:
    raw, root_hash = page
    assert native.parse_page(raw, root_hash) is raw
    assert both_parse(raw, root_hash) == raw
    assert native.parse_page(bytearray(raw), root_hash) == raw
    assert both_parse(raw, hashlib.sha256(raw).digest()) is None
    assert both_parse(raw, b"") is None
    assert both_parse(raw, root_hash[:31]) is None


@CHEAP
@given(pages(), st.data())
def test_compiled_parse_page_agrees_on_damaged_pages(page: tuple[bytes, bytes], data: st.DataObject) -> None:
    raw, root_hash = page
    changed = bytearray(raw)
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "mask", "splice"]))
    if kind == "flip":
        at = data.draw(st.integers(0, len(raw) - 1))
        changed[at] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        del changed[data.draw(st.integers(0, len(raw) - 1)):]
    elif kind == "extend":
        changed += data.draw(st.binary(min_size=1, max_size=140))
    elif kind == "mask":
        changed[0:2] = data.draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
    else:
        at = data.draw(st.integers(2, len(raw)))
        changed[at:at] = data.draw(st.binary(min_size=1, max_size=65))
    both_parse(bytes(changed), root_hash)


@CHEAP
@given(st.binary(max_size=2 + 65 * 16), st.binary(min_size=32, max_size=32) | st.binary(max_size=40))
def test_compiled_parse_page_agrees_on_any_bytes(raw: bytes, root_hash: bytes) -> None:
    both_parse(raw, root_hash)
    if len(raw) >= 67:  # a root record that matches, whatever follows
        both_parse(raw, hashlib.sha256(raw[2:67]).digest())


def test_compiled_parse_page_of_the_empty_page() -> None:
    # An empty root names no node: only the page of no node matches it.
    assert both_parse(b"\x00\x00", b"") == b"\x00\x00"
    assert both_parse(b"\x00\x01", b"") is None
    assert both_parse(b"\x00\x00", bytes(32)) is None


# --- errors through the compiled walk --------------------------------------------------


def written_tree(count: int) -> tuple[MemoryStore, list[bytes]]:
    keys = [hashlib.sha256(f"doc-{i}".encode()).digest() for i in range(count)]
    store = MemoryStore()
    batch = WriteBatch()
    StateTree(Overlay(store, batch)).update_reference(batch, dict.fromkeys(keys, b"v"))
    store.write(batch)
    return store, keys


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([0, 4, 8]), st.integers(0, 10_000), st.sampled_from(["flip", "drop", "truncate", "extend"]))
def test_corrupt_store_page_raises_through_the_compiled_walk(depth: int, where: int, kind: str) -> None:
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
    for walk in ("update", "update_reference"):
        batch = WriteBatch()
        tree = StateTree(Overlay(store, batch), cache=NodeCache())  # cold: the page is read from the store
        with pytest.raises(StoreCorruptError):
            getattr(tree, walk)(batch, {key: b"w"})


def test_tree_walk_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    # The hot path must run the compiled walk: the Python one is several times slower.
    assert smt_store._smtpage is native
    assert smt_store._parse_page is native.parse_page

    def refuse(*args: object) -> bytes:
        raise AssertionError("update took the Python walk")

    monkeypatch.setattr(StateTree, "update_reference", refuse)
    store = MemoryStore()
    batch = WriteBatch()
    items = {bytes(32): b"a", bytes(31) + b"\x01": b"b"}
    assert StateTree(Overlay(store, batch)).update(batch, items) == compute_root_naive(items)
