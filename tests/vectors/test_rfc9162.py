"""RFC 9162 §2.1 vectors: the published 8-leaf tables, the transparency-dev probes, and our own.

Three independent sources, so no single one is trusted: the shared JSON (from
transparency-dev/merkle), the transparency-dev accept/reject probes, and hashes derived
here by hand with ``hashlib`` following the RFC 9162 §2.1.5 example.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import ConsistencyProofError, InclusionProofError
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
    verify_inclusion_hash,
)
from ledger.store import MemoryStore, Overlay, WriteBatch

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "vectors"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


RFC = _load("rfc6962_vectors.json")
PROBES = _load("transparency_dev_probes.json")
LEAVES = [bytes.fromhex(x) for x in RFC["leaves_hex"]]


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def hexes(values: list[bytes]) -> list[str]:
    return [v.hex() for v in values]


@cache
def persisted_store() -> MemoryStore:
    """The 8 vector leaves in a persisted log, appended over two commits."""
    store = MemoryStore()
    for chunk in (LEAVES[:3], LEAVES[3:]):
        batch = WriteBatch()
        log = MerkleLog(Overlay(store, batch))
        for data in chunk:
            log.append(batch, data)
        store.write(batch)
    return store


def persisted_log() -> MerkleLog:
    return MerkleLog(persisted_store())


# --- the published tables ---------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == RFC["empty_root"]
    assert merkle_root([]) == EMPTY_ROOT
    assert MerkleLog(MemoryStore()).root() == EMPTY_ROOT


def test_leaf_hashes_match_vectors() -> None:
    assert hexes([leaf_hash(d) for d in LEAVES]) == RFC["leaf_hashes"]
    log = persisted_log()
    assert hexes([log.leaf_hash_at(i) for i in range(8)]) == RFC["leaf_hashes"]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_vectors(size: int) -> None:
    expected = RFC["roots"][str(size)]
    assert merkle_root(LEAVES[:size]).hex() == expected
    assert persisted_log().root(size).hex() == expected


def test_stored_perfect_nodes_match_vectors_by_level() -> None:
    store = persisted_store()
    for level, nodes in enumerate(RFC["node_hashes_by_level"]):
        for index, expected in enumerate(nodes):
            key = b"log/n" + bytes([level]) + index.to_bytes(8, "big")
            assert store.get(key) == bytes.fromhex(expected), (level, index)
    assert store.get(b"log/size") == (8).to_bytes(8, "big")


def _inclusion_cases() -> list[dict[str, Any]]:
    return list(RFC["inclusion"]) + list(RFC["derived_all_inclusion"]["proofs"])


def _consistency_cases() -> list[dict[str, Any]]:
    return list(RFC["consistency"]) + list(RFC["derived_all_consistency"]["proofs"])


@pytest.mark.parametrize("case", _inclusion_cases(), ids=lambda c: f"{c['index']}-of-{c['size']}")
def test_inclusion_proofs_match_vectors(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    assert hexes(inclusion_proof(LEAVES[:size], index)) == case["path"]
    assert hexes(persisted_log().inclusion_proof(index, size)) == case["path"]
    root = bytes.fromhex(RFC["roots"][str(size)])
    verify_inclusion(LEAVES[index], index, size, unhex(case["path"]), root)


@pytest.mark.parametrize("case", _consistency_cases(), ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_proofs_match_vectors(case: dict[str, Any]) -> None:
    old, new = case["size1"], case["size2"]
    assert hexes(consistency_proof(LEAVES[:new], old)) == case["proof"]
    assert hexes(persisted_log().consistency_proof(old, new)) == case["proof"]
    verify_consistency(
        old, new, unhex(case["proof"]),
        bytes.fromhex(RFC["roots"][str(old)]), bytes.fromhex(RFC["roots"][str(new)]),
    )


# --- transparency-dev probes -------------------------------------------------


@pytest.mark.parametrize("probe", PROBES["inclusion"], ids=lambda p: p["file"])
def test_inclusion_probe(probe: dict[str, Any]) -> None:
    args = (
        bytes.fromhex(probe["leaf_hash"]), probe["index"], probe["size"],
        unhex(probe["path"]), bytes.fromhex(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(InclusionProofError, match="expected"):
            verify_inclusion_hash(*args)
    else:
        verify_inclusion_hash(*args)


@pytest.mark.parametrize("probe", PROBES["consistency"], ids=lambda p: p["file"])
def test_consistency_probe(probe: dict[str, Any]) -> None:
    args = (
        probe["size1"], probe["size2"], unhex(probe["proof"]),
        bytes.fromhex(probe["root1"]), bytes.fromhex(probe["root2"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ConsistencyProofError, match="expected"):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_probe_files_cover_every_group() -> None:
    groups = {p["file"].split("/")[1] for p in PROBES["inclusion"]}
    assert {"0", "1", "2", "3", "4", "single-entry"} <= groups
    assert any(not p["wantErr"] for p in PROBES["consistency"])
    assert sum(p["wantErr"] for p in PROBES["consistency"]) > 80


# --- our own vectors, derived by hand from RFC 9162 §2.1.5 --------------------
#
# The §2.1.5 figure names the nodes of the 7-leaf tree; here d0..d7 are the vector
# leaves, hashed with hashlib directly (not through ledger.merkle).
#
#             hash8                     hash7
#           /       \                 /      \
#          k         n               k        l
#        /   \     /   \           /   \     / \
#       g     h   i     m         g     h   i   j
#      / \   / \ / \   / \       / \   / \ / \
#      a b   c d e f   j jj      a b   c d e f


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaf(d: bytes) -> bytes:
    return _h(b"\x00" + d)


def _node(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


a, b, c, d, e, f, j, jj = (_leaf(x) for x in LEAVES)
g, h, i = _node(a, b), _node(c, d), _node(e, f)
k, l_, m = _node(g, h), _node(i, j), _node(j, jj)
HASH7 = _node(k, l_)
HASH8 = _node(k, _node(i, m))


def test_hand_derived_symbols_match_the_published_example() -> None:
    symbols = RFC["rfc9162_section_2_1_5_example_on_these_leaves"]["symbols"]
    assert (g.hex(), h.hex(), i.hex(), k.hex(), l_.hex()) == (
        symbols["g"], symbols["h"], symbols["i"], symbols["k"], symbols["l"]
    )


def test_hand_derived_roots() -> None:
    assert merkle_root(LEAVES[:7]) == HASH7 == persisted_log().root(7)
    assert merkle_root(LEAVES) == HASH8 == persisted_log().root(8)
    assert merkle_root(LEAVES[:1]) == a
    assert merkle_root(LEAVES[:3]) == _node(g, c)
    assert merkle_root(LEAVES[:6]) == _node(k, i)
    assert _h(b"") == EMPTY_ROOT
    assert node_hash(a, b) == g


@pytest.mark.parametrize(
    ("index", "expected"),
    [(0, [b, h, l_]), (3, [c, g, l_]), (4, [f, j, k]), (6, [i, k])],
    ids=["d0", "d3", "d4", "d6"],
)
def test_hand_derived_inclusion_proofs_in_7_leaf_tree(index: int, expected: list[bytes]) -> None:
    assert inclusion_proof(LEAVES[:7], index) == expected
    assert persisted_log().inclusion_proof(index, 7) == expected
    verify_inclusion(LEAVES[index], index, 7, expected, HASH7)


def test_hand_derived_inclusion_proof_in_8_leaf_tree() -> None:
    expected = [jj, i, k]  # leaf 6: sibling d7, then e-f, then the left half
    assert inclusion_proof(LEAVES, 6) == expected
    assert persisted_log().inclusion_proof(6) == expected
    verify_inclusion(LEAVES[6], 6, 8, expected, HASH8)


@pytest.mark.parametrize(
    ("old", "expected"),
    [(3, [c, d, g, l_]), (4, [l_]), (6, [i, j, k])],
    ids=["PROOF(3,D7)", "PROOF(4,D7)", "PROOF(6,D7)"],
)
def test_hand_derived_consistency_proofs_to_7_leaves(old: int, expected: list[bytes]) -> None:
    assert consistency_proof(LEAVES[:7], old) == expected
    assert persisted_log().consistency_proof(old, 7) == expected
    verify_consistency(old, 7, expected, merkle_root(LEAVES[:old]), HASH7)


def test_hand_derived_consistency_proof_to_8_leaves() -> None:
    old_root = _node(k, i)  # size 6
    expected = [i, m, k]
    assert consistency_proof(LEAVES, 6) == expected
    verify_consistency(6, 8, expected, old_root, HASH8)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(6, 8, expected, old_root, HASH7)
