"""The tamper matrix: change any single part of a proof bundle and it never verifies as valid.

Mutations are enumerated systematically over the bundle's JSON tree (every field removed,
nulled, retyped; every integer moved by one; every byte of every transaction, header
and state value flipped; hashes flipped, truncated, upper-cased; list entries dropped,
duplicated, swapped), plus semantic forgeries that stay well-encoded (a header field
changed and re-encoded, a transaction body changed and re-signed by another key, an
older version or another document's history substituted). Each mutated bundle must be
``unsound`` or ``tampered``, never ``valid`` (nor ``revoked``/``amended``, which would
also vouch for the copy).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.blocks import Header, compute_quorum
from ledger.chain import Chain
from ledger.encoding import H, compute_doc_hash
from ledger.genesis import Genesis
from ledger.keys import SigningKey
from ledger.proofs import build_bundle, verify_bundle
from ledger.transactions import Attachment, Envelope, Transaction
from scripts.devkit import load_example, make_alliance, with_number

COO = "certificate_of_origin"
TEDA = "EG-TEDA"
STONE = "BY-GREATSTONE"
SOUND_BUT_WRONG = {"unsound", "tampered"}
# Long byte strings whose every byte is flipped; shorter hex values get a few positions.
EVERY_BYTE = {"tx", "header", "state_value"}
Mutation = tuple[str, dict[str, Any]]


def coo(number: str, statement: str | None = None) -> dict[str, Any]:
    document = with_number(load_example("coo_preferential.json"), COO, number)
    if statement is not None:
        document["firstSignatoryAuthentication"]["statement"] = statement
    return document


@pytest.fixture(scope="module")
def chain_and_genesis() -> tuple[Chain, Genesis, dict[str, bytes]]:
    alliance = make_alliance(4)
    chain = alliance.chain()
    v1, v2, v3 = coo("TM-1"), coo("TM-1", "weights corrected"), coo("TM-1", "address corrected")
    revoked = coo("TM-2")
    data = b"%PDF-1.7 TM-1"
    alliance.commit_next(chain, [
        alliance.issue(TEDA, COO, v1, "TM-1", attachments=(Attachment("tm-1.pdf", "application/pdf", H(data), 13),)),
        alliance.issue(STONE, COO, revoked, "TM-2"),
        alliance.issue(TEDA, COO, coo("TM-3"), "TM-3"),
    ])
    alliance.commit_next(chain, [
        alliance.amend(TEDA, f"{TEDA}/TM-1", v2, compute_doc_hash(v1), "weights corrected"),
        (alliance.revoke(STONE, f"{STONE}/TM-2", compute_doc_hash(revoked), "cancelled"), None),
    ])
    alliance.commit_next(chain, [alliance.amend(TEDA, f"{TEDA}/TM-1", v3, compute_doc_hash(v2), "address corrected")])
    hashes = {f"{TEDA}/TM-1": compute_doc_hash(v3), f"{STONE}/TM-2": compute_doc_hash(revoked)}
    return chain, alliance.genesis, hashes


def flip(hex_text: str, position: int) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[position] ^= 0x01
    return raw.hex()


def set_at(bundle: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


def delete_at(bundle: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return out


def is_hex(value: str) -> bool:
    try:
        return len(value) > 0 and bytes.fromhex(value).hex() == value
    except ValueError:
        return False


def leaf_mutations(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """Replacements for one leaf value."""
    yield "null", None
    if isinstance(value, bool):
        yield "negated", not value
    elif isinstance(value, int):
        yield "plus one", value + 1
        if value > 0:
            yield "minus one", value - 1
        yield "as text", str(value)
    elif isinstance(value, str) and is_hex(value):
        size = len(value) // 2
        positions = range(size) if name in EVERY_BYTE else sorted({0, size // 2, size - 1})
        for position in positions:
            yield f"byte {position} flipped", flip(value, position)
        yield "truncated", value[:-2]
        yield "extended", value + "00"
        if value != value.upper():
            yield "upper case", value.upper()
    elif isinstance(value, str):
        yield "changed", value + "x"
        yield "empty", ""


def structural_mutations(bundle: dict[str, Any]) -> Iterator[Mutation]:
    """Every single change over the JSON tree."""

    def walk(node: Any, path: tuple[Any, ...]) -> Iterator[Mutation]:
        label = "/".join(str(p) for p in path)
        if isinstance(node, dict):
            for key, child in node.items():
                yield f"{label}/{key} removed", delete_at(bundle, (*path, key))
                yield from walk(child, (*path, key))
            yield f"{label}/extra added", set_at(bundle, (*path, "extra"), 1) if path else {**bundle, "extra": 1}
        elif isinstance(node, list):
            yield f"{label} emptied", set_at(bundle, path, [])
            # A certificate with fewer (but still a quorum of) signatures is still a valid
            # certificate; dropping signatures is tested against the quorum separately.
            if path[-2:] != ("commit", "signatures"):
                for i in range(len(node)):
                    yield f"{label}[{i}] removed", set_at(bundle, path, node[:i] + node[i + 1:])
            yield f"{label} first duplicated", set_at(bundle, path, [node[0], *node] if node else [None])
            if len(node) > 1:
                yield f"{label} first two swapped", set_at(bundle, path, [node[1], node[0], *node[2:]])
            for i, child in enumerate(node):
                yield from walk(child, (*path, i))
        else:
            name = str(path[-1])
            for what, replacement in leaf_mutations(name, node):
                if path:
                    yield f"{label} {what}", set_at(bundle, path, replacement)

    yield from walk(bundle, ())


def header_forgeries(bundle: dict[str, Any]) -> Iterator[Mutation]:
    """Each header field changed, re-encoded canonically, with header_fields kept in step."""
    header = Header.decode(bytes.fromhex(bundle["header"]))
    for field in dataclasses.fields(Header):
        value = getattr(header, field.name)
        if isinstance(value, bytes):
            changed = bytes([value[0] ^ 1]) + value[1:]
        elif isinstance(value, int):
            changed = value + 1
        else:
            changed = value + "x"
        forged = header.with_changes(**{field.name: changed})
        yield (f"header.{field.name} forged",
               {**bundle, "header": forged.encode().hex(), "header_fields": forged.to_json()})


def tx_forgeries(bundle: dict[str, Any], genesis: Genesis) -> Iterator[Mutation]:
    """Body fields changed: kept with the old signature, and re-signed by an outsider's key."""
    envelope = Envelope.decode(bytes.fromhex(bundle["tx"]))
    outsider = SigningKey.from_label("tamper outsider")
    body = envelope.tx.body
    for field in dataclasses.fields(body):  # type: ignore[arg-type]
        value = getattr(body, field.name)
        if isinstance(value, bytes):
            changed: Any = bytes([value[0] ^ 1]) + value[1:]
        elif isinstance(value, str):
            changed = value + "x"
        elif isinstance(value, tuple):
            changed = ()
        else:
            continue
        if changed == value:
            continue
        forged_body = dataclasses.replace(body, **{field.name: changed})
        tx = dataclasses.replace(envelope.tx, body=forged_body)
        kept = Envelope.create(tx, envelope.sig)
        yield f"tx.body.{field.name} changed, old signature", {**bundle, "tx": kept.encode().hex()}
        resigned = Transaction(tx.chain_id, outsider.public, tx.nonce, forged_body).sign(outsider)
        yield f"tx.body.{field.name} changed, re-signed", {**bundle, "tx": resigned.encode().hex()}
    resigned = Transaction(envelope.tx.chain_id, outsider.public, envelope.tx.nonce, body).sign(outsider)
    yield "tx re-signed by an outsider", {**bundle, "tx": resigned.encode().hex()}
    yield "tx nonce changed", {
        **bundle, "tx": Envelope.create(dataclasses.replace(envelope.tx, nonce=envelope.tx.nonce + 1), envelope.sig)
        .encode().hex(),
    }


def substitutions(bundle: dict[str, Any], other: dict[str, Any]) -> Iterator[Mutation]:
    """Well-formed pieces put where they do not belong."""
    first = bundle["history"][0]
    yield "current tx rolled back to the first version", {
        **bundle, "tx": first["tx"], "log_index": first["log_index"], "inclusion_proof": first["inclusion_proof"],
    }
    yield "history entry from another document", set_at(bundle, ("history", len(bundle["history"]) - 1),
                                                         other["history"][-1])
    yield "another document's history appended", {**bundle, "history": [*bundle["history"], *other["history"]]}
    yield "another document's state proof", {**bundle, "state_value": other["state_value"],
                                              "state_proof": other["state_proof"]}
    yield "history dropped to the current entry only", {
        **bundle, "history": [e for e in bundle["history"] if e["tx"] == bundle["tx"]],
    }
    if len(bundle["history"]) > 1:
        yield "history reversed", {**bundle, "history": bundle["history"][::-1]}


@pytest.mark.parametrize("doc_id", [f"{TEDA}/TM-1", f"{STONE}/TM-2"])
def test_no_single_change_verifies_as_valid(chain_and_genesis: tuple[Chain, Genesis, dict[str, bytes]],
                                            doc_id: str) -> None:
    chain, genesis, hashes = chain_and_genesis
    bundle = build_bundle(chain, doc_id)
    other = build_bundle(chain, f"{TEDA}/TM-3")
    copy_hash = hashes[doc_id]
    baseline = verify_bundle(bundle, genesis, copy_hash=copy_hash).verdict
    assert baseline == ("valid" if doc_id.endswith("TM-1") else "revoked")
    mutations = [*structural_mutations(bundle), *header_forgeries(bundle), *tx_forgeries(bundle, genesis),
                 *substitutions(bundle, other)]
    assert len(mutations) > 500
    escaped = []
    for label, mutated in mutations:
        if mutated == bundle:
            continue
        result = verify_bundle(mutated, genesis, copy_hash=copy_hash)
        if result.verdict not in SOUND_BUT_WRONG or result.verdict == "valid":
            escaped.append((label, result.verdict))
    assert not escaped, escaped[:20]


def test_signatures_below_quorum_are_unsound(chain_and_genesis: tuple[Chain, Genesis, dict[str, bytes]]) -> None:
    chain, genesis, hashes = chain_and_genesis
    doc_id = f"{TEDA}/TM-1"
    bundle = build_bundle(chain, doc_id)
    signatures = bundle["commit"]["signatures"]
    quorum = compute_quorum(len(genesis.validators))
    assert len(signatures) > quorum
    at_quorum = set_at(bundle, ("commit", "signatures"), signatures[:quorum])
    assert verify_bundle(at_quorum, genesis, copy_hash=hashes[doc_id]).verdict == "valid"
    for count in range(quorum):
        below = set_at(bundle, ("commit", "signatures"), signatures[:count])
        result = verify_bundle(below, genesis, copy_hash=hashes[doc_id])
        assert result.verdict == "unsound"
        commit_check = next(c for c in result.checks if c.code == "commit")
        assert not commit_check.ok and "commit.quorum" in commit_check.detail


def test_a_signature_counted_twice_is_unsound(chain_and_genesis: tuple[Chain, Genesis, dict[str, bytes]]) -> None:
    chain, genesis, hashes = chain_and_genesis
    doc_id = f"{TEDA}/TM-1"
    bundle = build_bundle(chain, doc_id)
    signatures = bundle["commit"]["signatures"]
    twice = set_at(bundle, ("commit", "signatures"), [signatures[0], signatures[0], signatures[1]])
    assert verify_bundle(twice, genesis, copy_hash=hashes[doc_id]).verdict == "unsound"


@pytest.fixture(scope="module")
def changed_chain() -> tuple[Chain, Genesis, bytes]:
    """A chain whose set changed twice (a zone joined, a validator key rotated) before
    the certificate the bundle proves."""
    alliance = make_alliance(4)
    chain = alliance.chain()
    propose = alliance.gov_propose(TEDA, alliance.zone_add("HU-CSEPEL", "Csepel Free Port", "HU"))
    alliance.commit_next(chain, [(propose, None), *((alliance.gov_approve(z, propose.tx_hash), None)
                                                    for z in (STONE, "DJ-DIFTZ"))])
    alliance.commit_next(chain, [])
    alliance.commit_next(chain, [])
    change = alliance.key_change(chain, "DJ-DIFTZ", validator=True)
    alliance.commit_next(chain, [(alliance.rotate_keys("DJ-DIFTZ", change), None)])
    alliance.commit_next(chain, [])
    document = coo("TM-9")
    alliance.commit_next(chain, [alliance.issue(TEDA, COO, document, "TM-9")])
    return chain, alliance.genesis, compute_doc_hash(document)


def test_no_single_change_of_validator_history_or_issuer_verifies_as_valid(
    changed_chain: tuple[Chain, Genesis, bytes],
) -> None:
    """DESIGN §12's additions to the bundle, under the same matrix as the rest."""
    chain, genesis, copy_hash = changed_chain
    bundle = build_bundle(chain, f"{TEDA}/TM-9")
    assert len(bundle["validator_history"]) == 2
    assert verify_bundle(bundle, genesis, copy_hash=copy_hash).verdict == "valid"
    mutations = [
        (label, mutated) for label, mutated in structural_mutations(bundle)
        if label.startswith(("/validator_history", "validator_history", "/issuer", "issuer", "/validators", "validators"))
    ]
    for i, entry in enumerate(bundle["validator_history"]):
        for label, forged in header_forgeries(entry):
            mutated = copy.deepcopy(bundle)
            mutated["validator_history"][i] = {**entry, "header": forged["header"]}
            mutations.append((f"validator_history[{i}].{label}", mutated))
    assert len(mutations) > 300
    escaped = []
    for label, mutated in mutations:
        if mutated == bundle:
            continue
        result = verify_bundle(mutated, genesis, copy_hash=copy_hash)
        if result.verdict not in SOUND_BUT_WRONG:
            escaped.append((label, result.verdict))
    assert not escaped, escaped[:20]
