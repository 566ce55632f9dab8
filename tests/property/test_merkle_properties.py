"""Properties of the RFC 9162 log: proofs verify, tampering is rejected, and the
persisted :class:`MerkleLog` agrees with the pure reference functions."""

from __future__ import annotations

import secrets
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import ConsistencyProofError, InclusionProofError
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledger.store import MemoryStore, Overlay, WriteBatch

MAX_SIZE = 1000
# Distinct leaves of varied length, the first one empty as in the RFC vectors.
LEAVES: tuple[bytes, ...] = (b"",) + tuple(b"%d:" % i + b"\xa5" * (i % 5) for i in range(1, MAX_SIZE))
assert len(set(LEAVES)) == MAX_SIZE

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def root_of(size: int) -> bytes:
    return merkle_root(LEAVES[:size])


@cache
def committed_log() -> MerkleLog:
    """All MAX_SIZE leaves, appended in uneven batches, each committed."""
    store = MemoryStore()
    position, chunk = 0, 1
    while position < MAX_SIZE:
        batch = WriteBatch()
        log = MerkleLog(Overlay(store, batch))
        for data in LEAVES[position:position + chunk]:
            log.append(batch, data)
        store.write(batch)
        position += chunk
        chunk = chunk * 3 % 97 + 1
    return MerkleLog(store)


def sides_from_tree_shape(index: int, size: int) -> list[bool]:
    """Bottom-up, whether each sibling on leaf ``index``'s path lies to its left.

    Derived from the recursive split of RFC 9162, independently of the verifier's
    bit arithmetic: two (index, size) pairs with the same sides hash a proof identically.
    """
    sides: list[bool] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = 1
        while k * 2 < hi - lo:
            k *= 2
        if index < lo + k:
            sides.append(False)
            hi = lo + k
        else:
            sides.append(True)
            lo += k
    return sides[::-1]


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def old_and_new(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(min_value=2, max_value=MAX_SIZE))
    return draw(st.integers(min_value=1, max_value=new - 1)), new


def flip(proof: list[bytes], position: int, offset: int, mask: int) -> list[bytes]:
    altered = list(proof)
    element = bytearray(altered[position])
    element[offset] ^= mask
    altered[position] = bytes(element)
    return altered


# --- inclusion -----------------------------------------------------------------


@SETTINGS
@given(size_and_index())
def test_inclusion_proof_verifies_and_matches_persisted_log(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    verify_inclusion(LEAVES[index], index, size, proof, root_of(size))
    assert committed_log().inclusion_proof(index, size) == proof
    assert root_from_inclusion_proof(leaf_hash(LEAVES[index]), index, size, proof) == root_of(size)


@SETTINGS
@given(size_and_index(), st.data())
def test_inclusion_proof_with_altered_byte_is_rejected(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    if not proof:
        return
    position = data.draw(st.integers(0, len(proof) - 1))
    offset = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(InclusionProofError):
        verify_inclusion(LEAVES[index], index, size, flip(proof, position, offset, mask), root_of(size))


@SETTINGS
@given(size_and_index(), st.integers(min_value=0, max_value=MAX_SIZE + 10))
def test_inclusion_proof_at_wrong_index_is_rejected(case: tuple[int, int], wrong: int) -> None:
    size, index = case
    if wrong == index:
        return
    proof = inclusion_proof(LEAVES[:size], index)
    with pytest.raises(InclusionProofError):
        verify_inclusion(LEAVES[index], wrong, size, proof, root_of(size))


@SETTINGS
@given(size_and_index(), st.integers(min_value=0, max_value=2 * MAX_SIZE))
def test_inclusion_proof_at_wrong_size_is_rejected_unless_shape_is_identical(
    case: tuple[int, int], wrong: int
) -> None:
    """A proof and root do not bind the size: only a trusted (size, root) pair does.

    So a wrong size is rejected exactly when it changes the path's shape.
    """
    size, index = case
    if wrong == size:
        return
    proof = inclusion_proof(LEAVES[:size], index)
    args = (LEAVES[index], index, wrong, proof, root_of(size))
    if index < wrong and sides_from_tree_shape(index, wrong) == sides_from_tree_shape(index, size):
        verify_inclusion(*args)
    else:
        with pytest.raises(InclusionProofError):
            verify_inclusion(*args)


@SETTINGS
@given(size_and_index(), st.sampled_from(["drop-last", "drop-first", "append-root", "prepend-random",
                                          "append-empty", "duplicate-first"]))
def test_truncated_or_extended_inclusion_proof_is_rejected(case: tuple[int, int], how: str) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    root = root_of(size)
    changed = {
        "drop-last": proof[:-1],
        "drop-first": proof[1:],
        "append-root": [*proof, root],
        "prepend-random": [secrets.token_bytes(32), *proof],
        "append-empty": [*proof, b""],
        "duplicate-first": proof[:1] + proof,
    }[how]
    if changed == proof:  # dropping from an empty proof changes nothing
        return
    with pytest.raises(InclusionProofError):
        verify_inclusion(LEAVES[index], index, size, changed, root)


@SETTINGS
@given(size_and_index(), st.integers(min_value=0, max_value=MAX_SIZE))
def test_inclusion_proof_against_wrong_root_or_leaf_is_rejected(case: tuple[int, int], other: int) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    with pytest.raises(InclusionProofError):
        verify_inclusion(LEAVES[index], index, size, proof, secrets.token_bytes(32))
    if other != size:
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES[index], index, size, proof, root_of(other))
    if other < MAX_SIZE and other != index:
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES[other], index, size, proof, root_of(size))


# --- consistency ---------------------------------------------------------------


@SETTINGS
@given(old_and_new())
def test_consistency_proof_verifies_and_matches_persisted_log(case: tuple[int, int]) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    verify_consistency(old, new, proof, root_of(old), root_of(new))
    assert committed_log().consistency_proof(old, new) == proof


@SETTINGS
@given(sizes)
def test_consistency_at_equal_sizes_needs_empty_proof_and_equal_roots(size: int) -> None:
    assert consistency_proof(LEAVES[:size], size) == []
    verify_consistency(size, size, [], root_of(size), root_of(size))
    with pytest.raises(ConsistencyProofError):
        verify_consistency(size, size, [root_of(size)], root_of(size), root_of(size))
    with pytest.raises(ConsistencyProofError):
        verify_consistency(size, size, [], root_of(size), root_of(size - 1))


@SETTINGS
@given(sizes)
def test_consistency_from_empty_tree_is_rejected(size: int) -> None:
    # Nothing to prove: the generator gives an empty proof, the verifier refuses it.
    assert consistency_proof(LEAVES[:size], 0) == []
    with pytest.raises(ConsistencyProofError):
        verify_consistency(0, size, [], EMPTY_ROOT, root_of(size))
    with pytest.raises(ConsistencyProofError):
        verify_consistency(size, 0, [], root_of(size), EMPTY_ROOT)


@SETTINGS
@given(old_and_new(), st.data())
def test_consistency_proof_with_altered_byte_is_rejected(case: tuple[int, int], data: st.DataObject) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    position = data.draw(st.integers(0, len(proof) - 1))
    offset = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ConsistencyProofError):
        verify_consistency(old, new, flip(proof, position, offset, mask), root_of(old), root_of(new))


@SETTINGS
@given(old_and_new(), st.sampled_from(["old-1", "old+1", "old^2", "new*2", "new//2"]))
def test_consistency_proof_at_wrong_sizes_is_rejected(case: tuple[int, int], how: str) -> None:
    # The transparency-dev perturbations. (new±1 can keep the shape, as for inclusion.)
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    wrong_old, wrong_new = {
        "old-1": (old - 1, new), "old+1": (old + 1, new), "old^2": (old ^ 2, new),
        "new*2": (old, new * 2), "new//2": (old, new // 2),
    }[how]
    with pytest.raises(ConsistencyProofError):
        verify_consistency(wrong_old, wrong_new, proof, root_of(old), root_of(new))


@SETTINGS
@given(old_and_new(), st.sampled_from(["drop-last", "drop-first", "append-old-root", "append-new-root",
                                       "prepend-empty", "duplicate-first", "empty"]))
def test_truncated_or_extended_consistency_proof_is_rejected(case: tuple[int, int], how: str) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    changed = {
        "drop-last": proof[:-1],
        "drop-first": proof[1:],
        "append-old-root": [*proof, root_of(old)],
        "append-new-root": [*proof, root_of(new)],
        "prepend-empty": [b"", *proof],
        "duplicate-first": proof[:1] + proof,
        "empty": [],
    }[how]
    with pytest.raises(ConsistencyProofError):
        verify_consistency(old, new, changed, root_of(old), root_of(new))


@SETTINGS
@given(old_and_new())
def test_consistency_proof_against_wrong_roots_is_rejected(case: tuple[int, int]) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    for old_root, new_root in [
        (secrets.token_bytes(32), root_of(new)),
        (root_of(old), secrets.token_bytes(32)),
        (root_of(new), root_of(old)),
        (root_of(old - 1), root_of(new)),
        (root_of(old), root_of(new - 1)),
    ]:
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, new, proof, old_root, new_root)


# --- the persisted log against the reference --------------------------------------


def test_persisted_roots_match_reference_at_every_size() -> None:
    log = committed_log()
    assert log.size == MAX_SIZE
    for size in range(MAX_SIZE + 1):
        assert log.root(size) == root_of(size), size


def test_persisted_proofs_match_reference_exhaustively_for_small_trees() -> None:
    log = committed_log()
    for size in range(1, 70):
        for index in range(size):
            assert log.inclusion_proof(index, size) == inclusion_proof(LEAVES[:size], index), (index, size)
        for old in range(size + 1):
            assert log.consistency_proof(old, size) == consistency_proof(LEAVES[:size], old), (old, size)


# One step of a writer's life: append n leaves, commit, discard the pending batch, or
# replace the MerkleLog object with a fresh one.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(min_value=1, max_value=40)),
        st.tuples(st.sampled_from(["commit", "discard", "reopen"]), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_persisted_log_agrees_with_reference_across_batches_commits_and_discards(
    script: list[tuple[str, int]],
) -> None:
    store = MemoryStore()
    batch = WriteBatch()
    overlay = Overlay(store, batch)
    log = MerkleLog(overlay)
    committed: list[bytes] = []
    pending: list[bytes] = []
    serial = 0
    for action, count in script:
        if action == "append":
            for _ in range(count):
                # Leaves differ per run so a stale frontier would show in the roots.
                data = b"leaf-%d" % serial
                serial += 1
                assert log.append(batch, data) == len(committed) + len(pending)
                pending.append(data)
        elif action == "commit":
            store.write(batch)
            committed += pending
            pending = []
            batch = WriteBatch()
            overlay.batch = batch  # the same log object keeps reading through this overlay
        elif action == "discard":
            pending = []
            batch = WriteBatch()
            overlay.batch = batch
        else:
            log = MerkleLog(overlay)
        visible = committed + pending
        assert log.size == len(visible)
        assert log.root() == merkle_root(visible)
    visible = committed + pending
    assert MerkleLog(store).root() == merkle_root(committed)
    for size in range(len(visible) + 1):
        assert log.root(size) == merkle_root(visible[:size])
    if visible:
        size = len(visible)
        for index in {0, size // 2, size - 1}:
            assert log.inclusion_proof(index) == inclusion_proof(visible, index)
        for old in {1, size // 3, size - 1}:
            assert log.consistency_proof(old) == consistency_proof(visible, old)
