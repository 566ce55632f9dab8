"""The document log: an RFC 9162 Merkle tree, as pure functions and as a persisted log (DESIGN §5).

This module owns the log's hashing, its proofs and their verification:

* **Pure reference functions** over a list of leaf *data*: :func:`merkle_root`,
  :func:`inclusion_proof`, :func:`consistency_proof`. They follow RFC 9162 §2.1
  line by line (MTH, PATH, SUBPROOF) and are what every faster path is tested against.
* **Verifiers** :func:`verify_inclusion` / :func:`verify_inclusion_hash` /
  :func:`root_from_inclusion_proof` (§2.1.3.2) and :func:`verify_consistency`
  (§2.1.4.2). They return nothing or raise :class:`~ledger.errors.InclusionProofError`
  / :class:`~ledger.errors.ConsistencyProofError`.
* **The persisted log** :class:`MerkleLog`, which stores the hash of every perfect
  (complete) subtree at its aligned position and derives everything else from at
  most O(log n) of them.

A proof and a root do not bind the tree size by themselves (e.g. PATH(0, D[3])
also verifies as a claim about size 4 against the size-3 root): verifiers must take
(size, root) from a trusted checkpoint, as block headers provide.

Hashing (RFC 9162 §2.1.1): leaf ``H(0x00 || d)``, interior node ``H(0x01 || l || r)``,
split at the largest power of two strictly below n, empty tree ``H("")``.

Storage layout under a ``prefix``:

* ``prefix + b"n" + level (1 byte) + index (8 bytes, big-endian)`` is the root of the
  perfect subtree over leaves ``[index * 2^level, (index + 1) * 2^level)``; level 0
  holds the leaf hashes.
* ``prefix + b"size"`` is the number of leaves, 8 bytes big-endian; absent means 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ledger.encoding import HASH_SIZE, H, pack_uint64
from ledger.errors import ConsistencyProofError, InclusionProofError, StoreCorruptError

if TYPE_CHECKING:  # annotations only: the verifiers load without storage, as an offline verifier must
    from ledger.store import KVReader, WriteBatch

__all__ = [
    "EMPTY_ROOT",
    "MerkleLog",
    "compute_consistency_proof_length",
    "compute_inclusion_proof_length",
    "compute_split",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_hash",
]

EMPTY_ROOT: bytes = H(b"")
"""MTH({}) = HASH(), the root of the empty tree (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

# A uint64 index in the storage key bounds the log far beyond any realistic size.
_MAX_LEVEL = 64


# --- hashing (RFC 9162 §2.1.1) ------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = HASH(0x00 || d)."""
    return H(_LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || left || right), the hash of an interior node."""
    return H(_NODE_PREFIX + left + right)


def compute_split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


# --- pure reference functions (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1) ----------
#
# The recursions work on index ranges [lo, hi) of precomputed leaf hashes rather
# than on list slices: same structure as the RFC, without copying lists.


def _compute_subtree_root(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for ``hi - lo >= 1``."""
    n = hi - lo
    if n == 1:
        return hashes[lo]
    k = compute_split(n)
    return node_hash(_compute_subtree_root(hashes, lo, lo + k), _compute_subtree_root(hashes, lo + k, hi))


def _compute_path(hashes: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) with ``m`` relative to ``lo``."""
    n = hi - lo
    if n == 1:
        return []
    k = compute_split(n)
    if m < k:
        return _compute_path(hashes, m, lo, lo + k) + [_compute_subtree_root(hashes, lo + k, hi)]
    return _compute_path(hashes, m - k, lo + k, hi) + [_compute_subtree_root(hashes, lo, lo + k)]


def _compute_subproof(hashes: Sequence[bytes], m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b) with ``m`` relative to ``lo``; ``complete`` is the RFC's b."""
    n = hi - lo
    if m == n:
        return [] if complete else [_compute_subtree_root(hashes, lo, hi)]
    k = compute_split(n)
    if m <= k:
        return _compute_subproof(hashes, m, lo, lo + k, complete) + [_compute_subtree_root(hashes, lo + k, hi)]
    return _compute_subproof(hashes, m - k, lo + k, hi, False) + [_compute_subtree_root(hashes, lo, lo + k)]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the leaf data ``leaves``; :data:`EMPTY_ROOT` when there are none."""
    if not leaves:
        return EMPTY_ROOT
    hashes = [leaf_hash(d) for d in leaves]
    return _compute_subtree_root(hashes, 0, len(hashes))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]): the audit path of leaf ``index``, bottom-up (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"expected a leaf index in [0, {len(leaves)}), got {index}")
    hashes = [leaf_hash(d) for d in leaves]
    return _compute_path(hashes, index, 0, len(hashes))


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) (RFC 9162 §2.1.4.1); empty when old_size is 0 or n."""
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise ValueError(f"expected an old size in [0, {n}], got {old_size}")
    if old_size in (0, n):
        # The RFC defines proofs only for 0 < m < n; nothing needs proving otherwise.
        return []
    hashes = [leaf_hash(d) for d in leaves]
    return _compute_subproof(hashes, old_size, 0, n, True)


# --- proof shapes ------------------------------------------------------------


def compute_inclusion_proof_length(index: int, size: int) -> int:
    """Length of PATH(index, D[size]) for ``0 <= index < size``.

    The path has one hash per level below the point where the paths to ``index`` and
    to ``size - 1`` diverge ("inner"), plus one per left sibling on the right border.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def compute_consistency_proof_length(old_size: int, new_size: int) -> int:
    """Length of PROOF(old_size, D[new_size]) for ``0 < old_size < new_size``."""
    # Levels below the old tree's smallest perfect subtree are not in the proof; that
    # subtree's root is, unless it is the whole old tree (old_size a power of two).
    shift = (old_size & -old_size).bit_length() - 1
    length = compute_inclusion_proof_length(old_size - 1, new_size) - shift
    return length if old_size == 1 << shift else length + 1


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------


def _validate_hash(value: bytes, what: str, error: type[InclusionProofError | ConsistencyProofError]) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"expected {what} of {HASH_SIZE} bytes, got {len(value)}")


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf_hash`` at ``index`` in a tree of ``size``.

    RFC 9162 §2.1.3.2 steps 1-4, then the ``sn == 0`` half of step 5; raises
    :class:`InclusionProofError` if the proof cannot belong to such a tree.
    """
    if not 0 <= index < size:
        raise InclusionProofError(f"expected a leaf index in [0, {size}), got {index}")
    _validate_hash(leaf_hash, "a leaf hash", InclusionProofError)
    expected = compute_inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise InclusionProofError(
            f"expected {expected} proof hashes for leaf {index} of {size}, got {len(proof)}"
        )
    for position, element in enumerate(proof):
        _validate_hash(element, f"proof hash {position}", InclusionProofError)

    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise InclusionProofError(f"expected at most {expected} proof hashes, got more")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # fn is the last node on its level: climb until it is a right child.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionProofError(f"expected {expected} proof hashes, got too few to reach the root")
    return r


def verify_inclusion_hash(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf with hash ``leaf_hash`` is at ``index`` in the tree of ``size`` with ``root``."""
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise InclusionProofError(f"expected root {root.hex()}, got {computed.hex()} from the proof")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that leaf *data* ``leaf`` is at ``index`` in the tree of ``size`` with ``root``."""
    verify_inclusion_hash(leaf_hash(leaf), index, size, proof, root)


def _validate_consistency_shape(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """The checks around RFC 9162 §2.1.4.2, which covers only ``0 < old_size < new_size``.

    Returns True when the case is fully decided here (equal sizes), False when the
    RFC algorithm must run. The edge cases follow the transparency-dev/merkle probes.
    """
    if old_size < 0 or new_size < 0:
        raise ConsistencyProofError(f"expected non-negative sizes, got {old_size} and {new_size}")
    if old_size > new_size:
        raise ConsistencyProofError(f"expected old size <= new size {new_size}, got {old_size}")
    if old_size == new_size:
        if proof:
            raise ConsistencyProofError(f"expected an empty proof for equal sizes, got {len(proof)} hashes")
        if old_root != new_root:
            raise ConsistencyProofError(
                f"expected equal roots for equal sizes, got {old_root.hex()} and {new_root.hex()}"
            )
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ConsistencyProofError(f"expected the empty-tree root {EMPTY_ROOT.hex()}, got {old_root.hex()}")
        return True
    if old_size == 0:
        # Every tree extends the empty one, so such a proof shows nothing; like
        # transparency-dev/merkle we reject it rather than bless an unchecked new root.
        raise ConsistencyProofError(f"expected an old size above 0 to prove growth to {new_size}, got 0")
    expected = compute_consistency_proof_length(old_size, new_size)
    if len(proof) != expected:
        raise ConsistencyProofError(
            f"expected {expected} proof hashes from size {old_size} to {new_size}, got {len(proof)}"
        )
    for position, element in enumerate(proof):
        _validate_hash(element, f"proof hash {position}", ConsistencyProofError)
    return False


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the one of ``old_size`` with ``old_root``.

    RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. Equal sizes need an empty proof
    and equal roots (the empty-tree root at size 0); ``old_size == 0 < new_size`` and
    ``old_size > new_size`` are rejected.
    """
    if _validate_consistency_shape(old_size, new_size, proof, old_root, new_root):
        return
    path = list(proof)
    # Step 1 is ensured by the shape check (0 < old_size < new_size gives a non-empty proof).
    if old_size & (old_size - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ConsistencyProofError(f"expected {len(proof)} proof hashes to reach the root, got too many")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ConsistencyProofError(f"expected the proof to reach the root of size {new_size}, got too few hashes")
    if fr != old_root:
        raise ConsistencyProofError(f"expected old root {old_root.hex()}, got {fr.hex()} from the proof")
    if sr != new_root:
        raise ConsistencyProofError(f"expected new root {new_root.hex()}, got {sr.hex()} from the proof")


# --- the persisted log -------------------------------------------------------


class MerkleLog:
    """An append-only RFC 9162 log persisted through the narrow KV interface.

    Reads go through ``reader`` (usually ``Overlay(store, batch)`` so pending appends
    are visible); writes go only into the ``batch`` passed to :meth:`append`.

    Every leaf hash (level 0) and every interior node whose subtree is full is stored
    once, at its aligned position. The root of any prefix of the log, and every
    sibling on a proof path, is either one stored node or the fold of the stored
    perfect subtrees that tile it, so roots and proofs take O(log n) reads.

    Appends keep the right frontier (the roots of the perfect subtrees that tile the
    current log, largest first) in memory. It is trusted only while appends go to
    the same batch and the stored size record is still the one this object last
    wrote; otherwise (a new block, a dropped batch, another writer) it is rebuilt
    from storage, O(log n) reads once per batch. Roots and proofs never use it: they
    always read storage. ``reader`` must show ``batch``'s writes; appending through
    one that does not raises ``ValueError`` rather than overwrite leaves.
    """

    __slots__ = (
        "_batch", "_frontier", "_frontier_size", "_level_keys", "_reader", "_size_key", "_size_record",
    )

    def __init__(self, reader: KVReader, prefix: bytes = b"log/") -> None:
        self._reader = reader
        self._size_key = prefix + b"size"
        node_prefix = prefix + b"n"
        # Key prefixes per level, built once: append builds keys on the hot path.
        self._level_keys = [node_prefix + bytes([level]) for level in range(_MAX_LEVEL)]
        self._frontier: list[bytes] | None = None
        self._frontier_size = 0
        self._size_record: bytes | None = None
        self._batch: WriteBatch | None = None

    # --- storage access ---

    def _node_key(self, level: int, index: int) -> bytes:
        return self._level_keys[level] + pack_uint64(index)

    def _get_node(self, level: int, index: int) -> bytes:
        """The stored root of the perfect subtree (level, index); it must exist."""
        value = self._reader.get(self._node_key(level, index))
        if value is None or len(value) != HASH_SIZE:
            got = "nothing" if value is None else f"{len(value)} bytes"
            raise StoreCorruptError(f"expected log node (level {level}, index {index}), got {got}")
        return value

    def _get_size(self) -> int:
        return self._parse_size(self._reader.get(self._size_key))

    @staticmethod
    def _parse_size(raw: bytes | None) -> int:
        if raw is None:
            return 0
        if len(raw) != 8:
            raise StoreCorruptError(f"expected an 8-byte log size record, got {len(raw)} bytes")
        return int.from_bytes(raw, "big")

    @property
    def size(self) -> int:
        """Number of leaves, read from storage."""
        return self._get_size()

    def _get_range_root(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a range that RFC 9162's splitting produces (lo aligned).

        Such a range is tiled, left to right, by the perfect subtrees of its size's
        set bits, largest first; its root is their fold from the right.
        """
        width = hi - lo
        if width & (width - 1) == 0:
            level = width.bit_length() - 1
            return self._get_node(level, lo >> level)
        roots: list[bytes] = []
        for level in range(width.bit_length() - 1, -1, -1):
            if width >> level & 1:
                roots.append(self._get_node(level, lo >> level))
                lo += 1 << level
        root = roots.pop()
        while roots:
            root = node_hash(roots.pop(), root)
        return root

    def _validate_size(self, size: int | None) -> int:
        current = self._get_size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise ValueError(f"expected a tree size in [0, {current}], got {size}")
        return size

    # --- appends ---

    def _load_frontier(self, size: int) -> list[bytes]:
        """The roots of the perfect subtrees tiling leaves [0, size), largest first."""
        frontier: list[bytes] = []
        lo = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                frontier.append(self._get_node(level, lo >> level))
                lo += 1 << level
        return frontier

    def _reload_frontier(self, batch: WriteBatch) -> list[bytes]:
        """Rebuild the cached frontier from storage for appends into ``batch``."""
        record = self._reader.get(self._size_key)
        stored = self._parse_size(record)
        pending = batch.ops.get(self._size_key)
        if pending is not None and pending != pack_uint64(stored):
            # Rebuilding from a reader that misses the batch would overwrite leaves.
            raise ValueError(
                f"expected a reader that sees the batch (log size {int.from_bytes(pending, 'big')}), "
                f"got one showing size {stored}"
            )
        frontier = self._load_frontier(stored)
        self._frontier, self._frontier_size, self._size_record, self._batch = frontier, stored, record, batch
        return frontier

    def append(self, batch: WriteBatch, leaf_data: bytes) -> int:
        """Append one leaf into ``batch``; return its index.

        Writes the leaf hash and each subtree the leaf completes (one on average),
        then the new size: O(1) amortised writes, and one read (the size record) while
        the cached frontier is current.
        """
        # The cache is current only for the batch it was last used with and while the
        # stored size record is still the one this object wrote; anything else (a new
        # block, a dropped batch, another writer) forces a rebuild from storage.
        frontier = self._frontier
        if (
            frontier is None
            or batch is not self._batch
            or self._reader.get(self._size_key) != self._size_record
        ):
            frontier = self._reload_frontier(batch)
        index = self._frontier_size
        put = batch.put
        level_keys = self._level_keys
        # leaf_hash and node_hash inlined: this loop runs for every transaction.
        h = H(_LEAF_PREFIX + leaf_data)
        put(level_keys[0] + index.to_bytes(8, "big"), h)
        # Each trailing 1 bit of the index is a left sibling waiting on the frontier:
        # merge with it and store the completed parent one level up.
        level, position = 0, index
        while position & 1:
            h = H(_NODE_PREFIX + frontier.pop() + h)
            level += 1
            position >>= 1
            put(level_keys[level] + position.to_bytes(8, "big"), h)
        frontier.append(h)
        self._frontier_size = index + 1
        self._size_record = (index + 1).to_bytes(8, "big")
        put(self._size_key, self._size_record)
        return index

    # --- reads ---

    def root(self, size: int | None = None) -> bytes:
        """Root of the first ``size`` leaves (default: all); O(log n) reads."""
        size = self._validate_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self._get_range_root(0, size)

    def leaf_hash_at(self, index: int) -> bytes:
        """The stored leaf hash of leaf ``index``."""
        size = self._get_size()
        if not 0 <= index < size:
            raise ValueError(f"expected a leaf index in [0, {size}), got {index}")
        return self._get_node(0, index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) (default size: all); O(log n) reads.

        Walks RFC 9162's recursion top-down and reverses: only the first sibling
        taken while on the right border can be an imperfect subtree.
        """
        size = self._validate_size(size)
        if not 0 <= index < size:
            raise ValueError(f"expected a leaf index in [0, {size}), got {index}")
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = compute_split(hi - lo)
            if index < lo + k:
                path.append(self._get_range_root(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._get_range_root(lo, lo + k))
                lo += k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (default new size: all); O(log n) reads.

        Empty when ``old_size`` is 0 or equals ``new_size``. Walks SUBPROOF top-down
        and reverses, like :meth:`inclusion_proof`.
        """
        new_size = self._validate_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"expected an old size in [0, {new_size}], got {old_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        lo, hi, complete = 0, new_size, True
        while old_size != hi:
            k = compute_split(hi - lo)
            if old_size <= lo + k:
                proof.append(self._get_range_root(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._get_range_root(lo, lo + k))
                lo += k
                complete = False
        if not complete:
            proof.append(self._get_range_root(lo, hi))
        proof.reverse()
        return proof
