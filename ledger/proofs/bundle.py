"""The proof bundle's format (DESIGN §9): its fields, its version tag and the bounds a verifier enforces.

Both sides read these: :mod:`ledger.proofs.build` writes exactly :data:`BUNDLE_FIELDS`
and :mod:`ledger.proofs.verify` accepts nothing else. This module imports nothing.
"""

from __future__ import annotations

FORMAT_V1 = "zoneledger-proof/1"
"""The first format: validators are genesis's (no change of set can precede its header)."""
FORMAT = "zoneledger-proof/2"
"""The format this code writes (DESIGN §12): /1 plus the validator-set history and the
issuer's records. Both are read."""
BUNDLE_FIELDS_V1 = frozenset({
    "format", "chain_id", "genesis_hash", "document_hash", "tx", "log_index", "header", "header_fields",
    "commit", "validators", "inclusion_proof", "state_value", "state_proof", "history",
})
BUNDLE_FIELDS = BUNDLE_FIELDS_V1 | {"validator_history", "issuer"}
FIELDS_BY_FORMAT = {FORMAT_V1: BUNDLE_FIELDS_V1, FORMAT: BUNDLE_FIELDS}
"""Exactly the fields of a bundle of each format: a verifier refuses one with any missing or any other."""
CHECKPOINT_FIELDS = frozenset({
    "header", "header_fields", "block_hash", "commit", "validators", "chain_id", "genesis_hash",
})
"""The fields of a node's ``GET /v1/checkpoint`` answer before any change of the set;
after one it carries ``validator_history`` too."""
SET_CHANGE_FIELDS = frozenset({"header", "commit", "validators"})
"""The fields of each ``validator_history`` entry."""
ISSUER_FIELDS = frozenset({"officer_record", "officer_proof", "zone_record", "zone_proof"})
"""The fields of ``issuer``."""
MAX_SET_CHANGES = 10_000
"""Changes of the set are rare (joins, leaves, rotations); this bounds work on a hostile bundle."""
MAX_VALIDATORS = 1_000
HISTORY_FIELDS = frozenset({"tx", "log_index", "inclusion_proof"})
"""The fields of each ``history`` entry."""
STATE_VALUE_FIELDS = frozenset({"doc_hash", "status", "version", "log_index"})
"""The fields of the state-tree value (DESIGN §6) that ``state_value`` carries."""
MAX_PROOF_HASHES = 64
"""A proof longer than this cannot belong to a log of at most 2^64 leaves."""
MAX_HISTORY = 10_000
"""Documents have a handful of versions; this only bounds work on a hostile bundle."""

MATCH_DOCUMENT = "document"
"""The copy is a registered version of the document itself."""
MATCH_ATTACHMENT = "attachment"
"""The copy is a file attached to a registered version."""
