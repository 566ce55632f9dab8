"""The state tree: a compact sparse Merkle tree over 256-bit keys (DESIGN §6).

This module owns the tree's hashing rule and its proofs, and exports its persisted form:

* the rule, written plainly: :data:`EMPTY_HASH`, :func:`compute_leaf_hash`,
  :func:`compute_internal_hash`, :func:`compute_root_naive`;
* the proof type :class:`StateProof` (JSON as in the proof bundle, DESIGN §9) and
  :func:`verify_state_proof`, which returns nothing or raises
  :class:`~ledger.errors.StateProofError`;
* :class:`StateTree` and its shared :class:`NodeCache`, the persisted tree, which
  writes only into the caller's :class:`~ledger.store.WriteBatch`; they are defined in
  :mod:`ledger.smt_store`, whose docstring gives the storage layout (pages of four levels
  of nodes), and a differential property test keeps them equal to :func:`compute_root_naive`.
  That module is loaded on first use of either name, so that the rule and the proofs load
  without storage, as an offline verifier must.

Bit ``i`` of a key, most significant first, picks the branch at depth ``i`` (0 = left).
An empty subtree hashes to 32 zero bytes; a subtree holding exactly one leaf hashes to
``H(0x00 || key || H(value))`` (the leaf sits as high as it can); any other subtree is
``H(0x01 || left || right)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.encoding import H
from ledger.errors import StateProofError

if TYPE_CHECKING:
    from ledger.smt_store import NodeCache as NodeCache
    from ledger.smt_store import StateTree as StateTree

KEY_SIZE = 32
KEY_BITS = 256
EMPTY_HASH = bytes(32)
LEAF_TAG = b"\x00"
INTERNAL_TAG = b"\x01"
MAX_SIBLINGS = KEY_BITS

_HEX32 = re.compile(r"[0-9a-f]{64}")


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


leaf_hash = compute_leaf_hash
"""The name the task brief uses for :func:`compute_leaf_hash`."""


def __getattr__(name: str) -> Any:
    # The persisted tree (ledger.smt_store, which uses the names above) on first use only.
    if name in ("NodeCache", "StateTree"):
        from ledger import smt_store

        return getattr(smt_store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
