"""Deterministic alliances for the devnet, the benchmarks and the tests.

Lives with the command line, not in ``ledger/``: it signs with every key of an
alliance, which no validator ever holds, so it has no place in the deterministic core.
Keys come from labels (seed = SHA-256 of the label, as in the contract's vectors), so a
chain built here is the same on every machine. Nothing here is used by a running
validator to decide anything; it only *builds* inputs that the real rules then check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.blocks import PRECOMMIT, Block, CommitCertificate, Vote, build_commit
from ledger.chain import Chain
from ledger.documents import NUMBER_FIELDS
from ledger.encoding import compute_doc_hash, jcs
from ledger.genesis import Genesis
from ledger.governance import Action, KeyChange, Possession, ZoneAdd
from ledger.keys import SigningKey
from ledger.store import KVStore, MemoryStore
from ledger.transactions import (
    Attachment,
    DocAmend,
    DocIssue,
    DocRevoke,
    Envelope,
    GovApprove,
    GovPropose,
    OfficerRegister,
    OfficerRevoke,
    Transaction,
    ZoneRotateKeys,
)
from ledger.transition import ExecutedBlock, build_block, commit_block

ALLIANCE_ZONES: tuple[tuple[str, str, str], ...] = (
    ("EG-TEDA", "China-Egypt TEDA Suez Economic and Trade Cooperation Zone", "EG"),
    ("BY-GREATSTONE", "China-Belarus Industrial Park Great Stone", "BY"),
    ("DJ-DIFTZ", "Djibouti International Free Trade Zone", "DJ"),
    ("LK-HAMBANTOTA", "Hambantota Port Industrial Zone", "LK"),
    ("CN-QIANHAI", "Shenzhen Qianhai Free Trade Zone", "CN"),
    ("AE-JAFZA", "Jebel Ali Free Zone", "AE"),
    ("PA-COLON", "Colon Free Trade Zone", "PA"),
    ("KE-NAIVASHA", "Naivasha Special Economic Zone", "KE"),
    ("NG-LEKKI", "Lekki Free Trade Zone", "NG"),
    ("KH-SIHANOUKVILLE", "Sihanoukville Special Economic Zone", "KH"),
    ("LA-SAYSETTHA", "Vientiane Saysettha Development Zone", "LA"),
    ("ET-EASTERN", "Eastern Industry Zone, Dukem", "ET"),
    ("TH-RAYONG", "Thai-Chinese Rayong Industrial Zone", "TH"),
    ("HU-CECZ", "China-Europe Economic and Trade Cooperation Zone, Csepel Free Port", "HU"),
    ("NG-CALABAR", "Calabar Free Trade Zone", "NG"),
    ("ET-HAWASSA", "Hawassa Industrial Park", "ET"),
    ("PK-GWADAR", "Gwadar Free Zone", "PK"),
    ("KZ-KHORGOS", "Khorgos Eastern Gate Special Economic Zone", "KZ"),
    ("ZM-CHAMBISHI", "Zambia-China Economic and Trade Cooperation Zone, Chambishi", "ZM"),
    ("RS-SMEDEREVO", "Free Zone Smederevo", "RS"),
    ("VN-LONGJIANG", "Long Jiang Industrial Park", "VN"),
    ("TZ-BAGAMOYO", "Bagamoyo Special Economic Zone", "TZ"),
    ("GR-PIRAEUS", "Piraeus Free Zone", "GR"),
    ("MY-KUANTAN", "Malaysia-China Kuantan Industrial Park", "MY"),
    ("EG-PORTSAID", "SCZone East Port Said Industrial Zone", "EG"),
    ("UZ-NAVOI", "Navoi Free Economic Zone", "UZ"),
    ("PL-LODZ", "Lodz Special Economic Zone", "PL"),
    ("MA-TANGERMED", "Tanger Med Zones", "MA"),
    ("ID-MOROWALI", "Indonesia Morowali Industrial Park", "ID"),
    ("ZA-COEGA", "Coega Special Economic Zone", "ZA"),
    ("GE-KUTAISI", "Kutaisi Free Industrial Zone", "GE"),
    ("BG-TRAKIA", "Trakia Economic Zone", "BG"),
    ("MU-JINFEI", "Jinfei Economic and Trade Cooperation Zone", "MU"),
    ("MN-ZAMYNUUD", "Zamyn-Uud Free Economic Zone", "MN"),
    ("RW-KIGALI", "Kigali Special Economic Zone", "RW"),
    ("RO-CONSTANTA", "Constanta Free Zone", "RO"),
    ("OM-DUQM", "Special Economic Zone at Duqm", "OM"),
    ("GH-TEMA", "Tema Export Processing Zone", "GH"),
    ("UY-ZONAMERICA", "Zonamerica Free Trade Zone", "UY"),
    ("LT-KLAIPEDA", "Klaipeda Free Economic Zone", "LT"),
    ("MM-KYAUKPHYU", "Kyaukphyu Special Economic Zone", "MM"),
    ("SN-DIAMNIADIO", "Diamniadio Special Economic Zone", "SN"),
    ("IT-TRIESTE", "Free Port of Trieste", "IT"),
    ("SA-KAEC", "King Abdullah Economic City Industrial Valley", "SA"),
    ("TG-ADETIKOPE", "Adetikope Industrial Platform", "TG"),
    ("BR-MANAUS", "Manaus Free Trade Zone", "BR"),
    ("LV-RIGA", "Riga Free Port", "LV"),
    ("BD-ANWARA", "Chinese Economic and Industrial Zone, Anwara", "BD"),
    ("UG-KAPEEKA", "Liaoshen Industrial Park, Kapeeka", "UG"),
    ("ES-BARCELONA", "Zona Franca de Barcelona", "ES"),
    ("EG-ALEXANDRIA", "Alexandria Public Free Zone", "EG"),
    ("KG-BISHKEK", "Bishkek Free Economic Zone", "KG"),
    ("AO-LUANDA", "Luanda-Bengo Special Economic Zone", "AO"),
    ("PT-SINES", "Sines Industrial and Logistics Zone", "PT"),
    ("GA-NKOK", "Nkok Special Economic Zone", "GA"),
    ("CL-ZOFRI", "Iquique Free Trade Zone (ZOFRI)", "CL"),
    ("MT-FREEPORT", "Malta Freeport", "MT"),
    ("MK-BUNARDZIK", "Skopje Technological Industrial Development Zone Bunardzik", "MK"),
)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "scripts" / "examples"
EXAMPLE_DOC_TYPES = {
    "coo_preferential.json": "certificate_of_origin",
    "coo_non_preferential.json": "certificate_of_origin",
    "decl_export.json": "customs_declaration",
    "decl_import.json": "customs_declaration",
    "decl_free_zone_entry.json": "customs_declaration",
    "decl_free_zone_exit.json": "customs_declaration",
    "decl_re_export.json": "customs_declaration",
    "decl_transfer.json": "customs_declaration",
    "invoice.json": "commercial_invoice",
    "bill_of_lading.json": "bill_of_lading",
    "certificate_of_non_manipulation.json": "certificate_of_non_manipulation",
}
"""The document type of each example in ``scripts/examples``."""
TRADETRUST_SAMPLE_DOC_TYPES = {
    "tradetrust_chafta_coo_raw_v2.json": "certificate_of_origin",
    "tradetrust_invoice_raw_v2.json": "commercial_invoice",
    "tradetrust_bill_of_lading_raw_v2.json": "bill_of_lading",
    "tradetrust_certificate_of_non_manipulation_raw_v2.json": "certificate_of_non_manipulation",
}
"""The document type of each TradeTrust sample in ``../shared/samples``."""


def zone_ids(count: int) -> list[str]:
    """``count`` zone ids: the real members first, then numbered extras."""
    ids = [z[0] for z in ALLIANCE_ZONES[:count]]
    ids += [f"XX-ZONE{i:02d}" for i in range(len(ids), count)]
    return ids


@dataclass
class Alliance:
    """A genesis with every key that stands behind it."""

    genesis: Genesis
    validator_keys: list[SigningKey]
    admin_keys: dict[str, SigningKey]
    officer_keys: dict[str, SigningKey]
    auditor_keys: list[SigningKey] = field(default_factory=list)
    nonce: int = 1_700_000_000_000
    known_keys: dict[bytes, SigningKey] = field(default_factory=dict)
    """Every key this alliance ever made, by public key: validators that joined or
    rotated later sign with theirs."""

    def __post_init__(self) -> None:
        for key in (*self.validator_keys, *self.admin_keys.values(), *self.officer_keys.values(), *self.auditor_keys):
            self.known_keys[key.public] = key

    def make_key(self, label: str) -> SigningKey:
        key = SigningKey.from_label(f"zoneledger test {label}")
        self.known_keys[key.public] = key
        return key

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def chain(self, store: KVStore | None = None) -> Chain:
        return Chain(store if store is not None else MemoryStore(), self.genesis)

    # --- transactions -------------------------------------------------------

    def sign(self, key: SigningKey, body: Any, *, chain_id: str | None = None, nonce: int | None = None) -> Envelope:
        tx = Transaction(chain_id or self.genesis.chain_id, key.public, nonce or self.next_nonce(), body)
        return tx.sign(key)

    def issue(
        self, zone_id: str, doc_type: str, document: dict[str, Any], number: str, *,
        key: SigningKey | None = None, attachments: tuple[Attachment, ...] = (),
    ) -> tuple[Envelope, bytes]:
        content = jcs(document)
        body = DocIssue(doc_type, f"{zone_id}/{number}", compute_doc_hash(document), attachments)
        return self.sign(key or self.officer_keys[zone_id], body), content

    def amend(
        self, zone_id: str, doc_id: str, document: dict[str, Any], supersedes: bytes, reason: str, *,
        key: SigningKey | None = None, attachments: tuple[Attachment, ...] = (),
    ) -> tuple[Envelope, bytes]:
        content = jcs(document)
        body = DocAmend(doc_id, compute_doc_hash(document), supersedes, reason, attachments)
        return self.sign(key or self.officer_keys[zone_id], body), content

    def revoke(self, zone_id: str, doc_id: str, doc_hash: bytes, reason: str, *, key: SigningKey | None = None) -> Envelope:
        return self.sign(key or self.officer_keys[zone_id], DocRevoke(doc_id, doc_hash, reason))

    def register_officer(self, zone_id: str, officer: bytes) -> Envelope:
        return self.sign(self.admin_keys[zone_id], OfficerRegister(zone_id, officer))

    def revoke_officer(self, zone_id: str, officer: bytes) -> Envelope:
        return self.sign(self.admin_keys[zone_id], OfficerRevoke(zone_id, officer))

    # --- governance ---------------------------------------------------------

    def zone_add(self, zone_id: str, name: str, country: str) -> ZoneAdd:
        """A join request for a new zone, with fresh keys (kept here) and their possession proof."""
        admin, validator = self.make_key(f"admin {zone_id}"), self.make_key(f"validator {zone_id}")
        self.admin_keys[zone_id] = admin
        possession = Possession.sign(
            self.genesis.chain_id, zone_id, admin.public, validator.public, new_admin=admin, new_validator=validator
        )
        return ZoneAdd(zone_id, name, country, admin.public, validator.public, possession)

    def key_change(self, chain: Chain, zone_id: str, *, admin: bool = False, validator: bool = False, tag: str = "2") -> KeyChange:
        """New keys for ``zone_id`` (made here) with their possession proof."""
        zone = chain.get_zone(zone_id)
        assert zone is not None
        new_admin = self.make_key(f"admin {zone_id} {tag}") if admin else None
        new_validator = self.make_key(f"validator {zone_id} {tag}") if validator else None
        possession = Possession.sign(
            self.genesis.chain_id, zone_id, new_admin.public if new_admin else zone.admin_key,
            new_validator.public if new_validator else zone.validator_key,
            new_admin=new_admin, new_validator=new_validator,
        )
        return KeyChange(
            zone_id, new_admin.public if new_admin else None, new_validator.public if new_validator else None, possession
        )

    def gov_propose(self, zone_id: str, action: Action, expires_height: int = 1000) -> Envelope:
        return self.sign(self.admin_keys[zone_id], GovPropose(action, expires_height))

    def gov_approve(self, zone_id: str, proposal_id: bytes) -> Envelope:
        return self.sign(self.admin_keys[zone_id], GovApprove(proposal_id))

    def rotate_keys(self, zone_id: str, change: KeyChange) -> Envelope:
        envelope = self.sign(self.admin_keys[zone_id], ZoneRotateKeys(change))
        if change.admin_key is not None:
            self.admin_keys[zone_id] = self.known_keys[change.admin_key]
        return envelope

    # --- blocks -------------------------------------------------------------

    def certify(
        self, header_hash: bytes, height: int, round_: int, signers: list[int] | None = None, *,
        validators: Sequence[bytes] | None = None,
    ) -> CommitCertificate:
        """A commit certificate signed by ``signers`` (default: every validator) of
        ``validators`` (default: the genesis set)."""
        keys = [self.known_keys[v] for v in validators] if validators is not None else self.validator_keys
        chosen = range(len(keys)) if signers is None else signers
        votes = [Vote(self.genesis.chain_id, PRECOMMIT, height, round_, header_hash, i).sign(keys[i]) for i in chosen]
        return build_commit(votes)

    def propose(
        self, chain: Chain, entries: Sequence[tuple[Envelope, bytes | None]], *, round_: int = 0,
        time_ms: int | None = None,
    ) -> ExecutedBlock:
        """Build the next block from ``entries`` (all must be valid) without committing it."""
        last_commit = chain.get_commit(chain.height) if chain.height else None
        when = time_ms if time_ms is not None else chain.time_ms + 1000
        executed, rejected = build_block(
            chain, [(e.encode(), c) for e, c in entries], round_=round_, time_ms=when, last_commit=last_commit
        )
        if rejected:
            raise rejected[0].error
        return executed

    def commit_next(self, chain: Chain, entries: Sequence[tuple[Envelope, bytes | None]], **kwargs: Any) -> Block:
        """Build, certify and commit the next block."""
        executed = self.propose(chain, entries, **kwargs)
        block = executed.block
        validators = chain.validators_for(block.height)
        commit_block(chain, executed, self.certify(block.block_hash, block.height, block.header.round, validators=validators))
        return block


def make_alliance(
    zones: int = 4, *, chain_id: str = "sez-alliance-test", officers_per_zone: int = 1, auditors: int = 1,
    label: str = "zoneledger test", consensus: dict[str, int] | None = None,
) -> Alliance:
    """A deterministic alliance of ``zones`` members and its genesis."""
    validator_keys: list[SigningKey] = []
    admin_keys: dict[str, SigningKey] = {}
    officer_keys: dict[str, SigningKey] = {}
    zone_entries = []
    names = {z[0]: (z[1], z[2]) for z in ALLIANCE_ZONES}
    for zone_id in zone_ids(zones):
        validator = SigningKey.from_label(f"{label} validator {zone_id}")
        admin = SigningKey.from_label(f"{label} admin {zone_id}")
        officers = [SigningKey.from_label(f"{label} officer {zone_id} {i}") for i in range(officers_per_zone)]
        validator_keys.append(validator)
        admin_keys[zone_id] = admin
        if officers:
            officer_keys[zone_id] = officers[0]
        name, country = names.get(zone_id, (zone_id, "SG"))
        zone_entries.append({
            "zone_id": zone_id, "name": name, "country": country,
            "admin_key": admin.public.hex(), "validator_key": validator.public.hex(),
            "officers": [o.public.hex() for o in officers],
        })
    auditor_keys = [SigningKey.from_label(f"{label} auditor {i}") for i in range(auditors)]
    genesis_json = {
        "chain_id": chain_id,
        "genesis_time": "2026-11-26T00:00:00Z",
        "zones": zone_entries,
        "auditors": [a.public.hex() for a in auditor_keys],
        "consensus": consensus or {"timeout_propose_ms": 1000, "timeout_delta_ms": 500, "max_block_txs": 5000},
    }
    return Alliance(Genesis.from_json(genesis_json), validator_keys, admin_keys, officer_keys, auditor_keys)


def load_example(name: str) -> dict[str, Any]:
    """One of the example documents shipped in ``scripts/examples``."""
    value: dict[str, Any] = json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))
    return value


def with_number(document: dict[str, Any], doc_type: str, number: str) -> dict[str, Any]:
    """A copy of ``document`` carrying another number (the field depends on the type)."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    copy[NUMBER_FIELDS[doc_type]] = number
    return copy
