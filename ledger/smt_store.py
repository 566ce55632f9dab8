"""The persisted state tree: :class:`StateTree` over a key-value store, stored in pages.

The hashing rule, the proofs and the plain reference (:func:`~ledger.smt.compute_root_naive`)
are in :mod:`ledger.smt`, which also exports :class:`StateTree` and :class:`NodeCache`;
import them from there. A differential property test keeps :class:`StateTree` equal to
the reference.

Storage layout under ``prefix`` (default ``b"smt/"``)::

    prefix + b"r"                     -> root hash (absent: empty tree)
    prefix + b"v" + key               -> value bytes
    prefix + b"p" + path (hex digits) -> page

Pages. The tree is cut into slabs of four levels. A page holds the node at a depth that
is a multiple of 4 (its root) and the nodes below it down to three levels deeper: up to
15 nodes in heap order, slot 0 the root and slot ``s``'s children in slots ``2s + 1``
(left) and ``2s + 2`` (right). The children of the bottom row (slots 7 to 14) are the
roots of the pages below. A page is stored at its root's position, the first
``depth / 4`` hex digits of the path (lowercase ASCII; none for the root page). A page is
a 2-byte big-endian mask (bit ``s`` set iff slot ``s`` holds a node), then the records of
those nodes in slot order, each the 65-byte preimage of the node's hash: ``0x00 || key ||
value_hash`` for a leaf, ``0x01 || left || right`` for an internal node. A slot holds a
node iff it is the root or its parent is internal and names a child hash other than the
empty one. A page exists at a position iff the node there is not empty. Keys are never
removed, so a position goes from empty to leaf to internal and stays internal: the
record at a position is always the current tree's. An update of one key reads and
writes about log2(n) / 4 pages, not log2(n) node records.

Reading a page from the store checks its mask and every record in it against the hash
its parent names (the root's against the hash the parent page, or the stored root,
names), and raises :class:`~ledger.errors.StoreCorruptError` if a record is missing,
extra or differs.

Cache: :class:`NodeCache` maps a page's root hash to the page, the same bytes as stored.
A hash has exactly one preimage and a page's root commits to every node in it, so the
page of a hash is the same whatever tree, position or reader it is found through; and
every walk starts from the root hash read through the reader. The cache therefore
cannot serve state that was not written (a discarded batch leaves only entries that no
written root leads to) and may be shared by trees over any reader (:mod:`ledger.chain`
shares one across blocks). An update takes each page it rewrites out of the cache and
puts the new page in, so the cache holds the live tree rather than the garbage of past
blocks; after a discarded update the pages it took are read from the store again.

The update (:meth:`StateTree.update`) is one walk, in Python, hashing with
:mod:`hashlib` (OpenSSL, on the CPU's SHA instructions where there are any); a
differential property test keeps it equal to :func:`~ledger.smt.compute_root_naive`.

Performance notes (CPython): it works on a page as a list ``[mask
bytes, record, ...]`` unpacked from the page in one ``struct`` call and joined back in one
``bytes.join``; pages in the cache are single ``bytes`` objects, which the garbage
collector never scans (a cache of tuples of records cost about a tenth of the update time
in collections).
"""

from __future__ import annotations

import struct
from binascii import hexlify
from bisect import bisect_left
from collections.abc import Mapping
from hashlib import sha256 as _hash

from ledger.errors import StoreCorruptError
from ledger.store import KVReader, WriteBatch

PAGE_LEVELS = 4
"""Tree levels per page."""
PAGE_SLOTS = 15
"""Node slots per page."""
PAGE_BOTTOM = 7
"""The first slot of a page's bottom row; its children are the roots of other pages."""
RECORD_SIZE = 65

_EMPTY = bytes(32)  # ledger.smt.EMPTY_HASH; repeated here so that this module loads without it
_NO_NODES = b"\x00\x00"  # the mask of a page with no node yet
_LEVEL = tuple((slot + 1).bit_length() - 1 for slot in range(PAGE_SLOTS))
# _NEXT[nibble][slot]: the child of ``slot`` on a path whose bits at the page's four levels
# are ``nibble`` (slots above the bottom row).
_NEXT = tuple(
    tuple(2 * slot + 1 + ((nibble >> (PAGE_LEVELS - 1 - _LEVEL[slot])) & 1) for slot in range(PAGE_BOTTOM))
    for nibble in range(16)
)
_BEFORE = tuple((1 << slot) - 1 for slot in range(PAGE_SLOTS))  # mask bits of the earlier slots
# Page length -> the unpacker of [mask, record, ...].
_UNPACK = {2 + RECORD_SIZE * count: struct.Struct("2s" + "65s" * count).unpack for count in range(PAGE_SLOTS + 1)}
_LAYOUTS: dict[bytes, tuple[int, ...]] = {}
"""Mask bytes -> where each slot's record is in [mask, record, ...], 0 for an empty slot
(at most 2^15 entries, added as masks are met)."""


def _layout(mask_bytes: bytes) -> tuple[int, ...]:
    mask = mask_bytes[0] << 8 | mask_bytes[1]
    table = []
    count = 0
    for slot in range(PAGE_SLOTS):
        if (mask >> slot) & 1:
            count += 1
            table.append(count)
        else:
            table.append(0)
    layout = _LAYOUTS[mask_bytes] = tuple(table)
    return layout


def _put(page: list[bytes], slot: int, record: bytes) -> None:
    """Set ``slot``'s record in ``page`` ([mask, record, ...]), adding the slot if it was empty.

    Adding a slot moves only the records of later slots: never those of its ancestors or of
    any slot on a shallower level (every slot on a level comes after all those above it).
    """
    mask_bytes = page[0]
    mask = mask_bytes[0] << 8 | mask_bytes[1]
    index = 1 + (mask & _BEFORE[slot]).bit_count()
    if (mask >> slot) & 1:
        page[index] = record
    else:
        page.insert(index, record)
        page[0] = (mask | 1 << slot).to_bytes(2, "big")


def parse_page(raw: bytes, root_hash: bytes) -> bytes | None:
    """``raw`` if it is the page whose root hashes to ``root_hash``, else None.

    The mask must name exactly the slots the nodes name, every record must hash to what
    its parent names, and nothing may be left over.
    """
    if len(raw) < 2:
        return None
    mask = raw[0] << 8 | raw[1]
    if mask >> PAGE_SLOTS:
        return None
    named = [b""] * PAGE_SLOTS
    named[0] = root_hash
    end = 2
    for slot in range(PAGE_SLOTS):
        node_hash = named[slot]
        if bool(node_hash) != bool((mask >> slot) & 1):
            return None
        if not node_hash:
            continue
        record = raw[end:end + RECORD_SIZE]
        end += RECORD_SIZE
        if len(record) != RECORD_SIZE or _hash(record).digest() != node_hash:
            return None
        if record[0] == 1:
            if slot < PAGE_BOTTOM:
                left = record[1:33]
                right = record[33:65]
                if left != _EMPTY:
                    named[2 * slot + 1] = left
                if right != _EMPTY:
                    named[2 * slot + 2] = right
        elif record[0] != 0:
            return None
    return bytes(raw) if end == len(raw) else None


def _check_last_level(depth: int, data: bytes, root_hash: bytes) -> None:
    """Raise :class:`StoreCorruptError` for a page no tree has: below depth 256, or at depth
    256 holding more than one leaf (keys part at bit 255 at the latest)."""
    if depth > 256 or data[:3] != b"\x00\x01\x00":
        raise StoreCorruptError(
            f"expected no state tree node below the last level (depth 256), got page {root_hash.hex()} at depth {depth}"
        )


class NodeCache:
    """Page root hash -> page, in two generations so hot pages survive and cold ones age out.

    Content-addressed, hence never stale: share one between the trees a node builds block
    after block. ``capacity`` bounds each generation, so at most twice that many pages
    are held: a page is one ``bytes`` object of 2 + 65 bytes per node (a full page about
    1 KB, a page near the leaves, the most common, about 0.3 KB) plus about 150 bytes of
    dictionary entry and key.
    """

    __slots__ = ("capacity", "young", "old")

    def __init__(self, capacity: int = 1 << 17) -> None:
        self.capacity = capacity
        self.young: dict[bytes, bytes] = {}
        self.old: dict[bytes, bytes] = {}

    def get(self, root_hash: bytes) -> bytes | None:
        page = self.young.get(root_hash)
        if page is None:
            page = self.old.get(root_hash)
            if page is not None:
                self.young[root_hash] = page
        return page

    def take(self, root_hash: bytes) -> bytes | None:
        """Remove and return the page (its tree is about to be rewritten)."""
        page = self.young.pop(root_hash, None)
        if page is None:
            page = self.old.pop(root_hash, None)
        return page

    def add(self, root_hash: bytes, page: bytes) -> None:
        self.young[root_hash] = page

    def age(self) -> None:
        """Retire the young generation once it is full (called between operations)."""
        if len(self.young) > self.capacity:
            self.old = self.young
            self.young = {}

    def clear(self) -> None:
        self.young = {}
        self.old = {}

    def __len__(self) -> int:
        return len(self.young) + len(self.old)


class StateTree:
    """The state tree persisted through a :class:`~ledger.store.KVReader`, in pages.

    Reads go through ``reader`` (often ``Overlay(store, batch)``); writes go only into the
    batch passed to :meth:`update`, which the caller writes atomically with the rest of
    the block. Pages rooted at ``cache_depth`` or deeper are not cached: a random update
    rarely comes back to them, and they would push out the hot top of the tree.
    """

    __slots__ = ("reader", "prefix", "cache", "cache_depth", "_root_key", "_page_prefix", "_value_prefix")

    def __init__(
        self,
        reader: KVReader,
        prefix: bytes = b"smt/",
        *,
        cache: NodeCache | None = None,
        cache_depth: int = 24,
    ) -> None:
        self.reader = reader
        self.prefix = prefix
        self.cache = NodeCache() if cache is None else cache
        self.cache_depth = cache_depth
        self._root_key = prefix + b"r"
        self._page_prefix = prefix + b"p"
        self._value_prefix = prefix + b"v"

    def root(self) -> bytes:
        """The current root hash; 32 zero bytes for the empty tree."""
        root = self.reader.get(self._root_key)
        return _EMPTY if root is None else root

    def get(self, key: bytes) -> bytes | None:
        """The value bytes stored under ``key``, or None."""
        _check_key(key)
        return self.reader.get(self._value_prefix + key)

    def page_key(self, depth: int, key: bytes) -> bytes:
        """Storage key of the page holding the node at ``depth`` on ``key``'s path."""
        return self._page_prefix + hexlify(key)[:depth // PAGE_LEVELS]

    def _read_page(self, depth: int, path: int, root_hash: bytes) -> bytes:
        """The page rooted at ``depth`` on ``path`` from the store, checked against ``root_hash``."""
        raw = self.reader.get(self._page_prefix + hexlify(path.to_bytes(32, "big"))[:depth // PAGE_LEVELS])
        page = None if raw is None else parse_page(raw, root_hash)
        if page is None:
            found = "nothing" if raw is None else f"{len(raw)} bytes that do not match: {raw[:67].hex()}..."
            if raw is None and depth == 0 and self.reader.get(self.prefix + b"n\x00\x00") is not None:
                found += (" (the store holds the tree as one record per node, the layout before pages:"
                          " rebuild it by replaying the chain into a new store)")
            raise StoreCorruptError(f"expected state tree page {root_hash.hex()} at depth {depth}, got {found}")
        return page

    def _take_page(self, depth: int, path: int, root_hash: bytes) -> bytes:
        """The page, out of the cache's old generation or the store (the update rewrites it)."""
        page = self.cache.old.pop(root_hash, None)
        return self._read_page(depth, path, root_hash) if page is None else page

    def prove(self, key: bytes) -> StateProof:
        """A presence proof if ``key`` is in the tree, else an absence proof."""
        _check_key(key)
        path = int.from_bytes(key, "big")
        cache = self.cache
        node_hash = self.root()
        siblings: list[bytes] = []
        leaf: tuple[bytes, bytes] | None = None
        depth = 0
        while node_hash != _EMPTY and leaf is None:
            data = cache.get(node_hash)
            if data is None:
                data = self._read_page(depth, path, node_hash)
                if depth < self.cache_depth:
                    cache.add(node_hash, data)
            if depth >= 256:
                _check_last_level(depth, data, node_hash)
            page = _UNPACK[len(data)](data)
            layout = _LAYOUTS.get(page[0]) or _layout(page[0])
            slot = 0
            while True:
                record = page[layout[slot]]
                if record[0] == 0:
                    leaf = (record[1:33], record[33:65])
                    break
                bit = (path >> (255 - depth)) & 1
                if bit:
                    siblings.append(record[1:33])
                    node_hash = record[33:65]
                else:
                    siblings.append(record[33:65])
                    node_hash = record[1:33]
                depth += 1
                if slot >= PAGE_BOTTOM or node_hash == _EMPTY:
                    break
                slot = 2 * slot + 1 + bit
        cache.age()
        return StateProof(leaf=leaf, siblings=tuple(siblings))

    def update(self, batch: WriteBatch, items: Mapping[bytes, bytes]) -> bytes:
        """Insert or replace every ``key -> value`` in ``items``; write into ``batch`` only.

        Returns the new root. Keys are sorted and the tree is walked once, so the top of the tree shared by many
        keys is read and rehashed once per batch, not once per key (``walk``). Below the
        top almost every key walks alone (``walk_one``: a loop down, a loop up). This is
        the hot loop of block execution: lookups are bound to locals and nodes are plain
        ``bytes`` records in plain lists, never objects.
        """
        old_root = self.root()
        if not items:
            return old_root
        ops = batch.ops  # WriteBatch.put is exactly this assignment; skip the call per record
        value_prefix = self._value_prefix
        keys = sorted(items)
        for key in keys:
            _check_key(key)
        for key in keys:
            ops[value_prefix + key] = items[key]
        hashes = [_hash(items[key]).digest() for key in keys]
        paths = [int.from_bytes(key, "big") for key in keys]
        positions = [hexlify(key) for key in keys]

        page_prefix = self._page_prefix
        cache = self.cache
        young = cache.young
        young_pop = young.pop
        take_page = self._take_page
        cache_depth = self.cache_depth
        sha256 = _hash
        empty = _EMPTY
        leaf_tag = LEAF_TAG
        internal_tag = INTERNAL_TAG
        bottom = PAGE_BOTTOM
        no_nodes = _NO_NODES
        next_slots = _NEXT
        levels = _LEVEL
        unpack = _UNPACK
        layouts = _LAYOUTS.get
        make_layout = _layout
        put = _put
        before = _BEFORE
        chain = INTERNAL_TAG + _EMPTY + _EMPTY  # a one-sided node, its child hash not yet known

        def put_page(position: bytes, depth: int, page: list[bytes], root_hash: bytes) -> None:
            data = b"".join(page)
            ops[page_prefix + position[:depth >> 2]] = data
            if depth < cache_depth:
                young[root_hash] = data

        def build(
            page: list[bytes], slot: int, depth: int,
            paths: list[int], keys: list[bytes], hashes: list[bytes], lo: int, hi: int,
        ) -> bytes:
            # A new subtree for keys[lo:hi] at a slot that was empty or held a leaf.
            if hi - lo == 1:
                record = leaf_tag + keys[lo] + hashes[lo]
            else:
                shift = 255 - depth
                mid = bisect_left(paths, ((paths[lo] >> shift) | 1) << shift, lo, hi)
                if slot >= bottom:
                    left = build_page(depth + 1, paths, keys, hashes, lo, mid) if mid > lo else empty
                    right = build_page(depth + 1, paths, keys, hashes, mid, hi) if hi > mid else empty
                else:
                    left = build(page, 2 * slot + 1, depth + 1, paths, keys, hashes, lo, mid) if mid > lo else empty
                    right = build(page, 2 * slot + 2, depth + 1, paths, keys, hashes, mid, hi) if hi > mid else empty
                record = internal_tag + left + right
            put(page, slot, record)
            return sha256(record).digest()

        def build_page(depth: int, paths: list[int], keys: list[bytes], hashes: list[bytes], lo: int, hi: int) -> bytes:
            page = [no_nodes]
            root_hash = build(page, 0, depth, paths, keys, hashes, lo, hi)
            put_page(hexlify(keys[lo]), depth, page, root_hash)
            return root_hash

        def merge(page: list[bytes], slot: int, depth: int, record: bytes, lo: int, hi: int) -> bytes:
            # Several new keys meet a resident leaf: it moves down among them, unless one replaces it.
            resident = int.from_bytes(record[1:33], "big")
            at = bisect_left(paths, resident, lo, hi)
            if at < hi and paths[at] == resident:
                return build(page, slot, depth, paths, keys, hashes, lo, hi)
            return build(
                page, slot, depth,
                [*paths[lo:at], resident, *paths[at:hi]],
                [*keys[lo:at], record[1:33], *keys[at:hi]],
                [*hashes[lo:at], record[33:65], *hashes[at:hi]],
                0, hi - lo + 1,
            )

        def walk_one(page_depth: int, slot: int, page: list[bytes], node_hash: bytes, index: int) -> bytes:
            # One key from ``slot`` (hash ``node_hash``) of ``page``, the caller's copy of the
            # page at ``page_depth``. Writes the pages below; returns the slot's new hash.
            path = paths[index]
            key = keys[index]
            pushed: list[bytes] = []  # the old record of every node passed on the way down
            push = pushed.append
            above: list[tuple[list[bytes], int, int, int, int, tuple[int, ...]]] = []  # pages left
            entry = slot
            nibble = (path >> (252 - page_depth)) & 15 if page_depth < 256 else 0
            next_slot = next_slots[nibble]
            layout = layouts(page[0]) or make_layout(page[0])
            while True:
                index_in_page = layout[slot]
                if not index_in_page:
                    record = leaf_tag + key + hashes[index]
                    put(page, slot, record)
                    break
                record = page[index_in_page]
                if record[0] == 0:
                    if record[1:33] == key:
                        record = leaf_tag + key + hashes[index]
                        page[index_in_page] = record
                        break
                    # The key meets a resident leaf: one-sided nodes down to where their
                    # paths part, then the two leaves side by side.
                    if slot != entry:
                        parent = pushed[-1]
                        node_hash = parent[1:33] if slot & 1 else parent[33:65]
                    resident_record = record
                    resident = int.from_bytes(record[1:33], "big")
                    depth = page_depth + levels[slot]
                    split = 256 - (path ^ resident).bit_length()
                    # The new nodes fill slots below the resident's, in slot order, so each
                    # goes in after every record already there that precedes it.
                    mask_bytes = page[0]
                    mask = mask_bytes[0] << 8 | mask_bytes[1]
                    record = chain if depth < split else internal_tag + node_hash + node_hash
                    page[index_in_page] = record
                    push(record)
                    while depth < split:
                        depth += 1
                        if slot < bottom:
                            slot = next_slot[slot]
                        else:
                            page[0] = mask_bytes = mask.to_bytes(2, "big")
                            above.append((page, page_depth, entry, slot, nibble & 1, layouts(mask_bytes) or make_layout(mask_bytes)))
                            page_depth = depth
                            entry = slot = mask = 0
                            nibble = (path >> (252 - depth)) & 15
                            next_slot = next_slots[nibble]
                            page = [no_nodes]
                        record = chain if depth < split else internal_tag + node_hash + node_hash
                        page.insert(1 + (mask & before[slot]).bit_count(), record)
                        mask |= 1 << slot
                        push(record)
                    record = leaf_tag + key + hashes[index]
                    if slot < bottom:
                        slot = next_slot[slot]
                        left_slot = (slot - 1) | 1  # the two leaves are siblings: slots 2s + 1, 2s + 2
                        at = 1 + (mask & before[left_slot]).bit_count()
                        page[at:at] = (record, resident_record) if slot == left_slot else (resident_record, record)
                        page[0] = (mask | 3 << left_slot).to_bytes(2, "big")
                    else:
                        page[0] = mask_bytes = mask.to_bytes(2, "big")
                        above.append((page, page_depth, entry, slot, nibble & 1, layouts(mask_bytes) or make_layout(mask_bytes)))
                        page_depth = depth + 1
                        put_page(hexlify(resident_record[1:33]), page_depth, [b"\x00\x01", resident_record], node_hash)
                        entry = slot = 0
                        page = [b"\x00\x01", record]
                    break
                push(record)
                if slot < bottom:
                    slot = next_slot[slot]
                    continue
                bit = nibble & 1
                node_hash = record[33:65] if bit else record[1:33]
                above.append((page, page_depth, entry, slot, bit, layout))
                page_depth += 4
                entry = slot = 0
                nibble = (path >> (252 - page_depth)) & 15 if page_depth < 256 else 0
                next_slot = next_slots[nibble]
                if node_hash == empty:
                    page = [no_nodes]
                else:
                    data = young_pop(node_hash, b"") or take_page(page_depth, path, node_hash)
                    if page_depth >= 256:
                        _check_last_level(page_depth, data, node_hash)
                    page = list(unpack[len(data)](data))
                layout = layouts(page[0]) or make_layout(page[0])
            layout = layouts(page[0]) or make_layout(page[0])
            node_hash = sha256(record).digest()
            pop = pushed.pop
            while True:
                while slot != entry:
                    record = pop()
                    record = internal_tag + node_hash + record[33:] if slot & 1 else record[:33] + node_hash
                    slot = (slot - 1) >> 1
                    page[layout[slot]] = record
                    node_hash = sha256(record).digest()
                if not above:
                    return node_hash
                put_page(positions[index], page_depth, page, node_hash)
                page, page_depth, entry, slot, bit, layout = above.pop()
                record = pop()
                record = record[:33] + node_hash if bit else internal_tag + node_hash + record[33:]
                page[layout[slot]] = record
                node_hash = sha256(record).digest()

        def walk(page_depth: int, slot: int, page: list[bytes], node_hash: bytes, lo: int, hi: int) -> bytes:
            # Keys lo..hi (two or more) from ``slot`` of ``page``, the copy of the page at
            # ``page_depth``. The calls below add slots only deeper than ``slot``, which
            # does not move its record.
            depth = page_depth + levels[slot]
            if node_hash == empty:
                return build(page, slot, depth, paths, keys, hashes, lo, hi)
            index_in_page = (layouts(page[0]) or make_layout(page[0]))[slot]
            record = page[index_in_page]
            if record[0] == 0:
                return merge(page, slot, depth, record, lo, hi)
            shift = 255 - depth
            mid = bisect_left(paths, ((paths[lo] >> shift) | 1) << shift, lo, hi)
            left = record[1:33]
            right = record[33:65]
            if slot >= bottom:
                if mid > lo:
                    left = walk_page(depth + 1, left, lo, mid)
                if hi > mid:
                    right = walk_page(depth + 1, right, mid, hi)
            else:
                if mid - lo == 1:
                    left = walk_one(page_depth, 2 * slot + 1, page, left, lo)
                elif mid > lo:
                    left = walk(page_depth, 2 * slot + 1, page, left, lo, mid)
                if hi - mid == 1:
                    right = walk_one(page_depth, 2 * slot + 2, page, right, mid)
                elif hi > mid:
                    right = walk(page_depth, 2 * slot + 2, page, right, mid, hi)
            record = internal_tag + left + right
            page[index_in_page] = record
            return sha256(record).digest()

        def walk_page(depth: int, node_hash: bytes, lo: int, hi: int) -> bytes:
            # Keys lo..hi into the page rooted at ``depth`` whose root hash is ``node_hash``.
            if node_hash == empty:
                return build_page(depth, paths, keys, hashes, lo, hi)
            data = young_pop(node_hash, b"") or take_page(depth, paths[lo], node_hash)
            if depth >= 256:
                _check_last_level(depth, data, node_hash)
            page = list(unpack[len(data)](data))
            if hi - lo == 1:
                root_hash = walk_one(depth, 0, page, node_hash, lo)
            else:
                root_hash = walk(depth, 0, page, node_hash, lo, hi)
            put_page(positions[lo], depth, page, root_hash)
            return root_hash

        new_root = walk_page(0, old_root, 0, len(keys))
        cache.age()
        ops[self._root_key] = new_root
        return new_root


# Imported last: ledger.smt imports this module's classes at its end, and these names are
# only used when a tree is walked, so either module may be imported first.
from ledger.smt import INTERNAL_TAG, LEAF_TAG, StateProof, _check_key  # noqa: E402
