"""The state tree's walk at the edges: big batches, errors, hostile pages, memory, stack."""

from __future__ import annotations

import gc
import hashlib
import random
import threading
import tracemalloc

import pytest

from ledger.errors import StoreCorruptError
from ledger.smt import NodeCache, StateTree, compute_root_naive
from ledger.store import MemoryStore, Overlay, WriteBatch


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def flip_bit(key: bytes, bit: int) -> bytes:
    return (int.from_bytes(key, "big") ^ (1 << (255 - bit))).to_bytes(32, "big")


def update(store: MemoryStore, cache: NodeCache, items: dict[bytes, bytes]) -> bytes:
    """One batch through the walk, written."""
    batch = WriteBatch()
    root = StateTree(Overlay(store, batch), cache=cache).update(batch, items)
    store.write(batch)
    return root


def test_batches_of_thousands_match_naive() -> None:
    rng = random.Random(5)
    store = MemoryStore()
    cache = NodeCache(3000)  # small: both generations and store reads are exercised
    state: dict[bytes, bytes] = {}
    keys: list[bytes] = []
    for round_number in range(6):
        fresh = [rng.randbytes(32) for _ in range(1500)]
        neighbours = [flip_bit(rng.choice(keys), rng.randrange(256)) for _ in range(300)] if keys else []
        again = rng.sample(keys, min(len(keys), 500))
        items = {key: rng.randbytes(rng.randrange(100)) for key in fresh + neighbours + again}
        root = update(store, cache, items)
        state.update(items)
        keys += fresh + neighbours
        if round_number % 2:
            assert root == compute_root_naive(state)
        for key in rng.sample(keys, 20):  # single keys: one key's walk from the root
            items = {key: b"one"}
            update(store, cache, items)
            state.update(items)
    assert StateTree(store).root() == compute_root_naive(state)
    fresh_store = MemoryStore()
    update(fresh_store, NodeCache(), state)
    assert store.data == fresh_store.data  # the same pages, however the updates came


class FailingTree(StateTree):
    """A tree whose page reads fail after ``allowed`` of them."""

    def __init__(self, *args: object, allowed: int, error: BaseException, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.allowed = allowed
        self.error = error

    def _take_page(self, depth: int, path: int, root_hash: bytes) -> bytes:
        if self.allowed <= 0:
            raise self.error
        self.allowed -= 1
        return super()._take_page(depth, path, root_hash)


def written_tree(count: int) -> tuple[MemoryStore, list[bytes]]:
    keys = [sha(f"doc-{i}".encode()) for i in range(count)]
    store = MemoryStore()
    batch = WriteBatch()
    StateTree(Overlay(store, batch)).update(batch, dict.fromkeys(keys, b"v"))
    store.write(batch)
    return store, keys


@pytest.mark.parametrize("allowed", [0, 1, 2, 5, 20])
@pytest.mark.parametrize("size", [1, 2, 50])
def test_errors_of_page_reads_propagate(allowed: int, size: int) -> None:
    store, keys = written_tree(500)
    items = {key: b"new" for key in keys[:size]}
    batch = WriteBatch()
    tree = FailingTree(Overlay(store, batch), cache=NodeCache(), allowed=allowed, error=RuntimeError("disk on fire"))
    try:
        tree.update(batch, items)
    except RuntimeError as exc:
        assert str(exc) == "disk on fire"
    else:  # the walk needed fewer reads than allowed
        assert allowed >= 5
    batch = WriteBatch()
    # The store and a fresh cache still give the rule's answer.
    fresh = StateTree(Overlay(store, batch), cache=NodeCache())
    assert fresh.update(batch, items) == compute_root_naive(dict.fromkeys(keys, b"v") | items)


def chain_of_pages(pages_above: int, bottom: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """Root hash and pages (by root hash) of ``pages_above`` pages of one-sided nodes down
    the all-zero path, ending in the page ``bottom``."""
    pages = {sha(bottom[2:67]): bottom}
    below = sha(bottom[2:67])
    for _ in range(pages_above):
        records = []
        for _slot in (7, 3, 1, 0):  # the all-zero path through a page: slots 0, 1, 3, 7
            records.append(b"\x01" + below + bytes(32))
            below = sha(records[-1])
        pages[below] = b"\x00\x8b" + b"".join(reversed(records))
    return below, pages


@pytest.mark.parametrize("batch_size", [1, 2])
def test_hostile_tree_deeper_than_256_levels_is_refused(batch_size: int) -> None:
    # Pages that match their hashes, but whose nodes go on below the last level (depth 256):
    # no tree builds them, and the walk must stop rather than recurse on.
    leaf = b"\x00" + bytes(32) + sha(b"v")
    root, pages = chain_of_pages(66, b"\x00\x01" + leaf)
    store = MemoryStore()
    store.data[b"smt/r"] = root
    cache = NodeCache()
    cache.young.update(pages)
    items = {bytes(32): b"w", bytes(31) + b"\x01": b"x"}
    batch = WriteBatch()
    with pytest.raises(StoreCorruptError, match="below the last level"):
        StateTree(Overlay(store, batch), cache=cache).update(batch, dict(list(items.items())[:batch_size]))


def test_keys_must_be_32_bytes() -> None:
    for items in [{b"short": b"v"}, {bytes(32): b"v", bytes(33): b"w"}, {bytes(32): b"v", bytes(31): b"w"}]:
        batch = WriteBatch()
        with pytest.raises(ValueError, match="32-byte key"):
            StateTree(Overlay(MemoryStore(), batch)).update(batch, items)
        assert not batch.ops  # nothing written before the keys are checked

    class Key(bytes):
        pass

    batch = WriteBatch()
    with pytest.raises(ValueError, match="32-byte key"):  # bytes exactly
        StateTree(Overlay(MemoryStore(), batch)).update(batch, {Key(32): b"v"})
    with pytest.raises(TypeError):  # not bytes-like: no hash
        StateTree(Overlay(MemoryStore(), batch)).update(batch, {bytes(32): "text"})  # type: ignore[dict-item]


def test_values_of_any_bytes_like_type_hash_as_their_bytes() -> None:
    items: dict[bytes, bytes] = {sha(b"a"): bytearray(b"one"), sha(b"b"): memoryview(b"two")}  # type: ignore[dict-item]
    root = update(MemoryStore(), NodeCache(), items)
    assert root == compute_root_naive({sha(b"a"): b"one", sha(b"b"): b"two"})


def test_memory_does_not_grow_over_many_updates() -> None:
    store, keys = written_tree(2000)
    rng = random.Random(3)
    items = {key: b"w" for key in rng.sample(keys, 200)} | {rng.randbytes(32): b"n" for _ in range(50)}
    single = {keys[7]: b"z"}
    cache = NodeCache()

    def rounds(count: int) -> None:
        for _ in range(count):
            for batch_items in (items, single):  # discarded batches: the store stays as it is
                batch = WriteBatch()
                StateTree(Overlay(store, batch), cache=cache).update(batch, batch_items)
            for allowed in range(4):  # the error paths, at every depth of the first walk down
                batch = WriteBatch()
                failing = FailingTree(Overlay(store, batch), cache=NodeCache(), allowed=allowed, error=RuntimeError("x"))
                with pytest.raises(RuntimeError):
                    failing.update(batch, items)

    rounds(20)  # warm: the cache holds the rewritten pages
    gc.collect()
    tracemalloc.start()
    try:
        rounds(5)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        rounds(200)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    print(f"grew by {after - before} bytes over 200 rounds")
    assert after - before < 16 * 1024, f"grew by {after - before} bytes over 200 rounds"


def test_deepest_tree_on_a_small_thread_stack() -> None:
    # Keys parting only at the last bit: 256 levels, walked by recursion one level per call.
    keys = [bytes(32), bytes(31) + b"\x01", bytes(31) + b"\x02", bytes(31) + b"\x03"]
    results: list[object] = []

    def run() -> None:
        try:
            store = MemoryStore()
            for items in (dict.fromkeys(keys[:2], b"a"), dict.fromkeys(keys, b"b"), {keys[3]: b"c"}):
                batch = WriteBatch()
                results.append(StateTree(Overlay(store, batch)).update(batch, items))
                store.write(batch)
        except BaseException as exc:  # noqa: BLE001 - reported to the test's thread
            results.append(exc)

    old_size = threading.stack_size(256 * 1024)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_size)
    assert results[-1] == compute_root_naive(dict.fromkeys(keys, b"b") | {keys[3]: b"c"})
