"""The proof bundle's format (DESIGN §9): its fields, its version tag and the bounds a verifier enforces.

Both sides read these: :mod:`ledger.proofs.build` writes exactly :data:`BUNDLE_FIELDS`
and :mod:`ledger.proofs.verify` accepts nothing else. This module imports nothing.
"""

from __future__ import annotations

FORMAT = "zoneledger-proof/1"
"""The ``format`` field of every bundle this code writes and reads."""
BUNDLE_FIELDS = frozenset({
    "format", "chain_id", "genesis_hash", "document_hash", "tx", "log_index", "header", "header_fields",
    "commit", "validators", "inclusion_proof", "state_value", "state_proof", "history",
})
"""Exactly the fields of a bundle: a verifier refuses one with any missing or any other."""
CHECKPOINT_FIELDS = frozenset({
    "header", "header_fields", "block_hash", "commit", "validators", "chain_id", "genesis_hash",
})
"""The fields of a node's ``GET /v1/checkpoint`` answer."""
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
