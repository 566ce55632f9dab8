"""The compiled tree walk at the edges: big batches, errors, hostile pages, memory, stack."""

from __future__ import annotations

import gc
import hashlib
import random
import sys
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


def twin_update(
    stores: tuple[MemoryStore, MemoryStore], caches: tuple[NodeCache, NodeCache], items: dict[bytes, bytes]
) -> bytes:
    """One batch through each walk; asserts the effects are the same, writes both."""
    batches = (WriteBatch(), WriteBatch())
    compiled = StateTree(Overlay(stores[0], batches[0]), cache=caches[0]).update(batches[0], items)
    reference = StateTree(Overlay(stores[1], batches[1]), cache=caches[1]).update_reference(batches[1], items)
    assert compiled == reference
    assert list(batches[0].ops.items()) == list(batches[1].ops.items())
    assert caches[0].young == caches[1].young and caches[0].old == caches[1].old
    stores[0].write(batches[0])
    stores[1].write(batches[1])
    return compiled


def test_batches_of_thousands_equal_the_reference() -> None:
    rng = random.Random(5)
    stores = (MemoryStore(), MemoryStore())
    caches = (NodeCache(3000), NodeCache(3000))  # small: both generations and store reads are exercised
    state: dict[bytes, bytes] = {}
    keys: list[bytes] = []
    for round_number in range(6):
        fresh = [rng.randbytes(32) for _ in range(1500)]
        neighbours = [flip_bit(rng.choice(keys), rng.randrange(256)) for _ in range(300)] if keys else []
        again = rng.sample(keys, min(len(keys), 500))
        items = {key: rng.randbytes(rng.randrange(100)) for key in fresh + neighbours + again}
        root = twin_update(stores, caches, items)
        state.update(items)
        keys += fresh + neighbours
        if round_number % 2:
            assert root == compute_root_naive(state)
        for key in rng.sample(keys, 20):  # single keys: the walk_one path from the root
            items = {key: b"one"}
            twin_update(stores, caches, items)
            state.update(items)
    assert stores[0].data == stores[1].data


class FailingTree(StateTree):
    """A tree whose page reads fail after ``allowed`` of them."""

    def __init__(self, *args: object, allowed: int, error: BaseException, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.allowed = allowed
        self.error = error

    def _take_page_on(self, depth: int, key: bytes, root_hash: bytes) -> bytes:
        if self.allowed <= 0:
            raise self.error
        self.allowed -= 1
        return super()._take_page_on(depth, key, root_hash)


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
    value = items[keys[0]]
    references = sys.getrefcount(value)
    batch = WriteBatch()
    tree = FailingTree(Overlay(store, batch), cache=NodeCache(), allowed=allowed, error=RuntimeError("disk on fire"))
    try:
        tree.update(batch, items)
    except RuntimeError as exc:
        assert str(exc) == "disk on fire"
    else:  # the walk needed fewer reads than allowed
        assert allowed >= 5
    batch = WriteBatch()
    del tree
    gc.collect()  # the error's traceback and the tree that raised it form a cycle
    # The batch held the value until dropped; nothing else may keep a reference to it.
    assert sys.getrefcount(value) == references
    # The store and a fresh cache still give the reference's answer.
    fresh = StateTree(Overlay(store, batch), cache=NodeCache())
    assert fresh.update(batch, items) == compute_root_naive(dict.fromkeys(keys, b"v") | items)


def test_page_reads_that_return_no_page_are_refused() -> None:
    store, keys = written_tree(50)

    class Returning(StateTree):
        result: object = None

        def _take_page_on(self, depth: int, key: bytes, root_hash: bytes) -> bytes:
            return self.result  # type: ignore[return-value]

    for result, error in [("a page", TypeError), (None, TypeError), (b"\x00", StoreCorruptError),
                          (b"\x80\x00", StoreCorruptError), (b"\x00\x01" + bytes(64), StoreCorruptError),
                          (b"\x00\x03" + bytes(65), StoreCorruptError)]:
        batch = WriteBatch()
        tree = Returning(Overlay(store, batch), cache=NodeCache())
        tree.result = result
        with pytest.raises(error):
            tree.update(batch, {keys[0]: b"w"})


@pytest.mark.parametrize(
    "cached",
    [
        b"\x00", b"\x00\x01" + bytes(10), b"\xff\xff" + bytes(65), "text", 7,
        # A node that its parent names is missing. The Python walk reads the mask as its
        # record and goes on; the compiled one refuses. (Both keys below take the same side.)
        b"\x00\x01" + b"\x01" + b"\x07" * 64,
    ],
)
def test_malformed_cached_page_is_refused(cached: object) -> None:
    store, keys = written_tree(50)
    assert keys[0][0] >> 7 == keys[1][0] >> 7
    cache = NodeCache()
    cache.young[StateTree(store).root()] = cached  # type: ignore[assignment]
    batch = WriteBatch()
    with pytest.raises((StoreCorruptError, TypeError)):  # never a read out of bounds
        StateTree(Overlay(store, batch), cache=cache).update(batch, {keys[0]: b"w", keys[1]: b"x"})


@pytest.mark.parametrize(
    "cached",
    [
        b"",
        b"\x00\x01" + b"\x01" + bytes(64),  # an internal node with no children
        b"\x00\x01" + b"\x00" + sha(b"elsewhere") + sha(b"v"),  # one leaf, not of this tree
        b"\x00\x07" + b"\x05" + sha(b"l") + sha(b"r") + b"\x00" + sha(b"l") + bytes(32) + b"\x00" + sha(b"r") + bytes(32),
    ],
)
def test_cached_pages_of_the_right_shape_are_walked_as_the_reference_walks_them(cached: bytes) -> None:
    # An empty entry is skipped (``pop(...) or take_page``); a page of the right shape is
    # trusted, as the cache only holds pages that were checked or built: the two walks
    # must still do the same thing with it.
    outcomes = []
    for walk in ("update", "update_reference"):
        store, keys = written_tree(50)
        cache = NodeCache()
        cache.young[StateTree(store).root()] = cached
        batch = WriteBatch()
        try:
            root = getattr(StateTree(Overlay(store, batch), cache=cache), walk)(batch, {keys[0]: b"w", keys[1]: b"x"})
        except StoreCorruptError:
            root = None
        outcomes.append((root, list(batch.ops.items()), cache.young))
    assert outcomes[0] == outcomes[1]


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


def test_keys_are_checked_as_the_reference_checks_them() -> None:
    for items in [{b"short": b"v"}, {bytes(32): b"v", bytes(33): b"w"}, {bytes(32): b"v", bytes(31): b"w"}]:
        outcomes = []
        for walk in ("update", "update_reference"):
            batch = WriteBatch()
            with pytest.raises(ValueError, match="32-byte key") as caught:
                getattr(StateTree(Overlay(MemoryStore(), batch)), walk)(batch, items)
            outcomes.append((str(caught.value), batch.ops))
        assert outcomes[0] == outcomes[1]
    class Key(bytes):
        pass

    for walk in ("update", "update_reference"):
        batch = WriteBatch()
        with pytest.raises(ValueError, match="32-byte key"):  # bytes exactly, as the reference
            getattr(StateTree(Overlay(MemoryStore(), batch)), walk)(batch, {Key(32): b"v"})
        with pytest.raises(TypeError):  # not bytes-like: no hash
            getattr(StateTree(Overlay(MemoryStore(), batch)), walk)(batch, {bytes(32): "text"})


def test_values_of_any_bytes_like_type_hash_as_their_bytes() -> None:
    stores = (MemoryStore(), MemoryStore())
    caches = (NodeCache(), NodeCache())
    items: dict[bytes, bytes] = {sha(b"a"): bytearray(b"one"), sha(b"b"): memoryview(b"two")}  # type: ignore[dict-item]
    root = twin_update(stores, caches, items)
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


def test_without_the_extension_update_is_the_python_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkout used without building the extension still works, on the Python walk.
    from ledger import smt_store

    monkeypatch.setattr(smt_store, "_smtpage", None)
    monkeypatch.setattr(smt_store, "_parse_page", smt_store.parse_page)
    store, keys = written_tree(100)
    items = {keys[3]: b"w", sha(b"new"): b"n"}
    batch = WriteBatch()
    assert StateTree(Overlay(store, batch)).update(batch, items) == compute_root_naive(
        dict.fromkeys(keys, b"v") | items
    )
