"""The state tree: a compact sparse Merkle tree over 256-bit keys (DESIGN §6).

This module owns the tree's hashing rule, its proofs and its persisted form:

* the rule, written plainly: :data:`EMPTY_HASH`, :func:`compute_leaf_hash`,
  :func:`compute_internal_hash`, :func:`compute_root_naive`;
* the proof type :class:`StateProof` (JSON as in the proof bundle, DESIGN §9) and
  :func:`verify_state_proof`, which returns nothing or raises
  :class:`~ledger.errors.StateProofError`;
* :class:`StateTree`, the persisted fast twin, which writes only into the caller's
  :class:`~ledger.store.WriteBatch`; a differential property test keeps it equal to
  :func:`compute_root_naive`.

Bit ``i`` of a key, most significant first, picks the branch at depth ``i`` (0 = left).
An empty subtree hashes to 32 zero bytes; a subtree holding exactly one leaf hashes to
``H(0x00 || key || H(value))`` (the leaf sits as high as it can); any other subtree is
``H(0x01 || left || right)``.

Storage layout under ``prefix`` (default ``b"smt/"``)::

    prefix + b"r"                                   -> root hash (absent: empty tree)
    prefix + b"v" + key                             -> value bytes
    prefix + b"n" + depth (2 bytes BE) + path bytes -> node record, 65 bytes

A node is stored at its position: ``depth``, then the first ``depth`` bits of the path
as a big-endian integer in ``ceil(depth / 8)`` bytes. Its record is the
preimage of its hash: ``0x00 || key || value_hash`` for a leaf, ``0x01 || left ||
right`` for an internal node, so ``hash = H(record)``. Keys are never removed, so a
subtree's key set only grows and no position ever holds a stale record: a position
goes from empty to leaf to internal and stays internal.

Cache: :class:`NodeCache` maps a node's hash to its record. A hash has exactly one
preimage, and every walk starts from the root hash read through the reader, so the
cache cannot serve state that was not written (a discarded batch leaves only entries
no written hash leads to) and may be shared by trees over any reader. Records read
from the store are checked against the hash their parent names before they are cached.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.encoding import H
from ledger.errors import StateProofError, StoreCorruptError
from ledger.store import KVReader, WriteBatch


def _pick_sha256() -> Callable[[bytes], hashlib._Hash]:
    # CPython's own SHA-256 costs less per call than OpenSSL's for 65-byte inputs, and the
    # update loop makes one call per node; the digest is the same.
    try:
        fast: Callable[[bytes], hashlib._Hash] = importlib.import_module("_sha256").sha256
    except (ImportError, AttributeError):  # pragma: no cover - other interpreters
        return hashlib.sha256
    return fast


_sha256 = _pick_sha256()

KEY_SIZE = 32
KEY_BITS = 256
EMPTY_HASH = bytes(32)
LEAF_TAG = b"\x00"
INTERNAL_TAG = b"\x01"
MAX_SIBLINGS = KEY_BITS

_HEX32 = re.compile(r"[0-9a-f]{64}")
_DEPTH_BYTES = tuple(depth.to_bytes(2, "big") for depth in range(KEY_BITS + 1))


# --- the rule, as the specification reads -----------------------------------


def compute_leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    """Hash of a subtree holding exactly one leaf: ``H(0x00 || key || value_hash)``."""
    return H(LEAF_TAG + key + value_hash)


def compute_internal_hash(left: bytes, right: bytes) -> bytes:
    """Hash of a subtree holding two or more leaves: ``H(0x01 || left || right)``."""
    return H(INTERNAL_TAG + left + right)


def is_bit_set(key: bytes, depth: int) -> bool:
    """Bit ``depth`` of ``key``, most significant first: the branch taken at ``depth``."""
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1 == 1


def compute_root_naive(items: Mapping[bytes, bytes]) -> bytes:
    """Root of the tree holding ``items`` (key -> value bytes), recomputed from scratch."""
    for key in items:
        _check_key(key)
    leaves = [(key, H(value)) for key, value in items.items()]
    return _compute_subtree_naive(leaves, 0)


def _compute_subtree_naive(leaves: list[tuple[bytes, bytes]], depth: int) -> bytes:
    if not leaves:
        return EMPTY_HASH
    if len(leaves) == 1:
        key, value_hash = leaves[0]
        return compute_leaf_hash(key, value_hash)
    left = [leaf for leaf in leaves if not is_bit_set(leaf[0], depth)]
    right = [leaf for leaf in leaves if is_bit_set(leaf[0], depth)]
    return compute_internal_hash(
        _compute_subtree_naive(left, depth + 1), _compute_subtree_naive(right, depth + 1)
    )


def _check_key(key: bytes) -> None:
    if type(key) is not bytes or len(key) != KEY_SIZE:
        raise ValueError(f"expected a {KEY_SIZE}-byte key, got {key!r}")


# --- proofs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateProof:
    """The path from the root to where a key is, or would be (DESIGN §6, §9)."""

    leaf: tuple[bytes, bytes] | None
    """``(key, value_hash)`` of the leaf at the end of the path, or None if it is empty."""
    siblings: tuple[bytes, ...]
    """Sibling hashes along the path, root side first; the leaf sits at depth ``len``."""

    def to_json(self) -> dict[str, Any]:
        """The proof as in the bundle's ``state_proof``: lowercase hex."""
        leaf = None
        if self.leaf is not None:
            leaf = {"key": self.leaf[0].hex(), "value_hash": self.leaf[1].hex()}
        return {"leaf": leaf, "siblings": [sibling.hex() for sibling in self.siblings]}

    @classmethod
    def from_json(cls, obj: Any) -> StateProof:
        """Parse a bundle's ``state_proof``; raise :class:`StateProofError` if malformed."""
        if type(obj) is not dict or obj.keys() != {"leaf", "siblings"}:
            raise StateProofError(f"expected a map with leaf and siblings, got {_describe(obj)}")
        raw_leaf = obj["leaf"]
        leaf: tuple[bytes, bytes] | None = None
        if raw_leaf is not None:
            if type(raw_leaf) is not dict or raw_leaf.keys() != {"key", "value_hash"}:
                raise StateProofError(
                    f"expected leaf null or a map with key and value_hash, got {_describe(raw_leaf)}"
                )
            leaf = (_parse_hex32(raw_leaf["key"], "leaf.key"),
                    _parse_hex32(raw_leaf["value_hash"], "leaf.value_hash"))
        raw_siblings = obj["siblings"]
        if type(raw_siblings) is not list:
            raise StateProofError(f"expected siblings as a list, got {_describe(raw_siblings)}")
        if len(raw_siblings) > MAX_SIBLINGS:
            raise StateProofError(f"expected at most {MAX_SIBLINGS} siblings, got {len(raw_siblings)}")
        siblings = tuple(_parse_hex32(item, f"siblings[{i}]") for i, item in enumerate(raw_siblings))
        return cls(leaf=leaf, siblings=siblings)


def _parse_hex32(value: Any, what: str) -> bytes:
    if type(value) is not str or not _HEX32.fullmatch(value):
        raise StateProofError(f"{what}: expected 64 lowercase hex digits, got {_describe(value)}")
    return bytes.fromhex(value)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compute_root_from_proof(key: bytes, proof: StateProof) -> bytes:
    """The root that ``proof`` implies when walked along ``key``'s path."""
    node = EMPTY_HASH if proof.leaf is None else compute_leaf_hash(*proof.leaf)
    for depth in range(len(proof.siblings) - 1, -1, -1):
        sibling = proof.siblings[depth]
        if is_bit_set(key, depth):
            node = compute_internal_hash(sibling, node)
        else:
            node = compute_internal_hash(node, sibling)
    return node


def is_same_path(a: bytes, b: bytes, depth: int) -> bool:
    """Whether keys ``a`` and ``b`` agree on their first ``depth`` bits."""
    if depth == 0:
        return True
    shift = KEY_BITS - depth
    return int.from_bytes(a, "big") >> shift == int.from_bytes(b, "big") >> shift


def verify_state_proof(key: bytes, value: bytes | None, proof: StateProof, root: bytes) -> None:
    """Check that ``key`` holds ``value`` (or, with ``value`` None, is absent) under ``root``."""
    _check_proof_shape(key, proof)
    if value is not None:
        if proof.leaf is None:
            raise StateProofError(f"expected a leaf for key {key.hex()}, got an empty path")
        leaf_key, leaf_value_hash = proof.leaf
        if leaf_key != key:
            raise StateProofError(f"expected leaf key {key.hex()}, got {leaf_key.hex()}")
        value_hash = H(value)
        if leaf_value_hash != value_hash:
            raise StateProofError(f"expected value hash {value_hash.hex()}, got {leaf_value_hash.hex()}")
    elif proof.leaf is not None:
        leaf_key = proof.leaf[0]
        if leaf_key == key:
            raise StateProofError(f"expected key {key.hex()} absent, got a leaf for it")
        if not is_same_path(leaf_key, key, len(proof.siblings)):
            raise StateProofError(
                f"expected a leaf on the path of {key.hex()} at depth {len(proof.siblings)}, "
                f"got leaf {leaf_key.hex()}"
            )
    computed = compute_root_from_proof(key, proof)
    if computed != root:
        raise StateProofError(f"expected root {root.hex()}, got {computed.hex()}")


def _check_proof_shape(key: bytes, proof: StateProof) -> None:
    if type(key) is not bytes or len(key) != KEY_SIZE:
        raise StateProofError(f"expected a {KEY_SIZE}-byte key, got {_describe(key)}")
    if len(proof.siblings) > MAX_SIBLINGS:
        raise StateProofError(f"expected at most {MAX_SIBLINGS} siblings, got {len(proof.siblings)}")
    for sibling in proof.siblings:
        if type(sibling) is not bytes or len(sibling) != 32:
            raise StateProofError(f"expected 32-byte siblings, got {_describe(sibling)}")
    if proof.leaf is not None:
        for part in proof.leaf:
            if type(part) is not bytes or len(part) != 32:
                raise StateProofError(f"expected a leaf of two 32-byte strings, got {_describe(proof.leaf)}")


# --- the persisted tree ---------------------------------------------------------


class NodeCache:
    """Node hash -> node record, in two generations so hot nodes survive and stale ones age out.

    Content-addressed, hence never stale: share one between the trees a node builds
    block after block. ``capacity`` bounds each generation, so at most twice that many
    records (each about 200 bytes of Python objects) are held.
    """

    __slots__ = ("capacity", "young", "old")

    def __init__(self, capacity: int = 1 << 18) -> None:
        self.capacity = capacity
        self.young: dict[bytes, bytes] = {}
        self.old: dict[bytes, bytes] = {}

    def get(self, node_hash: bytes) -> bytes | None:
        record = self.young.get(node_hash)
        if record is None:
            record = self.old.get(node_hash)
            if record is not None:
                self.add(node_hash, record)
        return record

    def add(self, node_hash: bytes, record: bytes) -> None:
        self.young[node_hash] = record

    def age(self) -> None:
        """Retire the young generation once it is full (called between operations)."""
        if len(self.young) > self.capacity:
            self.old = self.young
            self.young = {}

    def clear(self) -> None:
        self.young = {}
        self.old = {}


class StateTree:
    """The state tree persisted through a :class:`~ledger.store.KVReader`.

    Reads go through ``reader`` (often ``Overlay(store, batch)``); writes go only into the
    batch passed to :meth:`update`, which the caller writes atomically with the rest of
    the block. Nodes deeper than ``cache_depth`` are not cached: a random update rarely
    comes back to them, and they would push out the hot top of the tree.
    """

    __slots__ = ("reader", "prefix", "cache", "cache_depth", "_root_key", "_node_prefix", "_value_prefix")

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
        self._node_prefix = prefix + b"n"
        self._value_prefix = prefix + b"v"

    def root(self) -> bytes:
        """The current root hash; 32 zero bytes for the empty tree."""
        root = self.reader.get(self._root_key)
        return EMPTY_HASH if root is None else root

    def get(self, key: bytes) -> bytes | None:
        """The value bytes stored under ``key``, or None."""
        _check_key(key)
        return self.reader.get(self._value_prefix + key)

    def node_key(self, depth: int, key: bytes) -> bytes:
        """Storage key of the node at ``depth`` on ``key``'s path."""
        return self._node_key(depth, int.from_bytes(key, "big"))

    def _node_key(self, depth: int, path: int) -> bytes:
        packed = (path >> (KEY_BITS - depth)).to_bytes((depth + 7) >> 3, "big")
        return self._node_prefix + _DEPTH_BYTES[depth] + packed

    def _load(self, depth: int, path: int, node_hash: bytes) -> bytes:
        """The record of the node at (``depth``, ``path``) whose parent names ``node_hash``."""
        cache = self.cache
        record = cache.get(node_hash)
        if record is not None:
            return record
        record = self.reader.get(self._node_key(depth, path))
        if record is None or _sha256(record).digest() != node_hash:
            raise StoreCorruptError(
                f"expected state tree node {node_hash.hex()} at depth {depth}, "
                f"got {'nothing' if record is None else record.hex()}"
            )
        if depth < self.cache_depth:
            cache.add(node_hash, record)
        return record

    def prove(self, key: bytes) -> StateProof:
        """A presence proof if ``key`` is in the tree, else an absence proof."""
        _check_key(key)
        path = int.from_bytes(key, "big")
        node_hash = self.root()
        siblings: list[bytes] = []
        depth = 0
        while node_hash != EMPTY_HASH:
            record = self._load(depth, path, node_hash)
            if record[0] == 0:
                self.cache.age()
                return StateProof(leaf=(record[1:33], record[33:65]), siblings=tuple(siblings))
            if (path >> (255 - depth)) & 1:
                siblings.append(record[1:33])
                node_hash = record[33:65]
            else:
                siblings.append(record[33:65])
                node_hash = record[1:33]
            depth += 1
        self.cache.age()
        return StateProof(leaf=None, siblings=tuple(siblings))

    def update(self, batch: WriteBatch, items: Mapping[bytes, bytes]) -> bytes:
        """Insert or replace every ``key -> value`` in ``items``; write into ``batch`` only.

        Keys are sorted and the tree is walked once, so the top of the tree shared by
        many keys is read and rehashed once per batch, not once per key. The walk is
        the hot loop of block execution: lookups are bound to locals and nodes are
        plain ``bytes`` records, never objects.
        """
        old_root = self.root()
        if not items:
            return old_root
        ops = batch.ops  # WriteBatch.put is exactly this assignment; skip the call per node
        value_prefix = self._value_prefix
        keys = sorted(items)
        for key in keys:
            _check_key(key)
            ops[value_prefix + key] = items[key]
        value_hashes = [_sha256(items[key]).digest() for key in keys]
        paths = [int.from_bytes(key, "big") for key in keys]

        node_prefix = self._node_prefix
        young = self.cache.young
        young_get = young.get
        load = self._load
        cache_depth = self.cache_depth
        depth_bytes = _DEPTH_BYTES
        sha256 = _sha256

        def store(depth: int, path: int, record: bytes) -> bytes:
            node_hash = sha256(record).digest()
            ops[node_prefix + depth_bytes[depth] + (path >> (256 - depth)).to_bytes((depth + 7) >> 3, "big")] = record
            if depth < cache_depth:
                young[node_hash] = record
            return node_hash

        def build(depth: int, paths: list[int], keys: list[bytes], hashes: list[bytes], lo: int, hi: int) -> bytes:
            path = paths[lo]
            if hi - lo == 1:
                return store(depth, path, LEAF_TAG + keys[lo] + hashes[lo])
            shift = 255 - depth
            mid = bisect_left(paths, ((path >> shift) | 1) << shift, lo, hi)
            left = EMPTY_HASH if mid == lo else build(depth + 1, paths, keys, hashes, lo, mid)
            right = EMPTY_HASH if mid == hi else build(depth + 1, paths, keys, hashes, mid, hi)
            return store(depth, path, INTERNAL_TAG + left + right)

        def merge(depth: int, record: bytes, lo: int, hi: int) -> bytes:
            # The resident leaf moves down beside the new keys, unless one replaces it.
            merged = dict(zip(keys[lo:hi], value_hashes[lo:hi], strict=True))
            merged.setdefault(record[1:33], record[33:65])
            sub_keys = sorted(merged)
            sub_paths = [int.from_bytes(key, "big") for key in sub_keys]
            sub_hashes = [merged[key] for key in sub_keys]
            return build(depth, sub_paths, sub_keys, sub_hashes, 0, len(sub_keys))

        def walk_one(depth: int, node_hash: bytes, index: int) -> bytes:
            # Below the top levels almost every key walks alone: a loop down and a loop
            # up cost less than a recursive call and a bisect per level.
            path = paths[index]
            key = keys[index]
            top = depth
            siblings: list[bytes] = []
            append = siblings.append
            while node_hash != EMPTY_HASH:
                record = young_get(node_hash)
                if record is None:
                    record = load(depth, path, node_hash)
                if record[0] == 0:
                    if record[1:33] != key:
                        node_hash = merge(depth, record, index, index + 1)
                        break
                    node_hash = EMPTY_HASH
                    break
                if (path >> (255 - depth)) & 1:
                    append(record[1:33])
                    node_hash = record[33:65]
                else:
                    append(record[33:65])
                    node_hash = record[1:33]
                depth += 1
            if node_hash == EMPTY_HASH:
                node_hash = store(depth, path, LEAF_TAG + key + value_hashes[index])
            while depth > top:
                depth -= 1
                if (path >> (255 - depth)) & 1:
                    record = INTERNAL_TAG + siblings[depth - top] + node_hash
                else:
                    record = INTERNAL_TAG + node_hash + siblings[depth - top]
                node_hash = sha256(record).digest()
                ops[node_prefix + depth_bytes[depth] + (path >> (256 - depth)).to_bytes((depth + 7) >> 3, "big")] = record
                if depth < cache_depth:
                    young[node_hash] = record
            return node_hash

        def walk(depth: int, node_hash: bytes, lo: int, hi: int) -> bytes:
            if hi - lo == 1:
                return walk_one(depth, node_hash, lo)
            if node_hash == EMPTY_HASH:
                return build(depth, paths, keys, value_hashes, lo, hi)
            path = paths[lo]
            record = young_get(node_hash)
            if record is None:
                record = load(depth, path, node_hash)
            if record[0] == 0:
                return merge(depth, record, lo, hi)
            shift = 255 - depth
            mid = bisect_left(paths, ((path >> shift) | 1) << shift, lo, hi)
            left = walk(depth + 1, record[1:33], lo, mid) if mid > lo else record[1:33]
            right = walk(depth + 1, record[33:65], mid, hi) if hi > mid else record[33:65]
            return store(depth, path, INTERNAL_TAG + left + right)

        new_root = walk(0, old_root, 0, len(keys))
        self.cache.age()
        ops[self._root_key] = new_root
        return new_root


leaf_hash = compute_leaf_hash
"""The name the task brief uses for :func:`compute_leaf_hash`."""
