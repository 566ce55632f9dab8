"""Proof bundles: what a trader or auditor verifies offline, trusting only genesis (DESIGN §9).

Two sides, kept apart so that the verifier never loads storage:

* building, beside the node: :mod:`ledger.proofs.build` (:func:`build_bundle`,
  :func:`bundle_for_hash`) reads a document's bundle out of a chain;
* verifying, with nothing but the genesis file: :mod:`ledger.proofs.verify`
  (:func:`verify_bundle`, :func:`verify_checkpoint`), which runs the rules of
  :mod:`ledger.proofs.rules` over the untrusted bundle as :mod:`ledger.proofs.evidence`
  parses it. :mod:`ledger.proofs.bundle` holds the format both sides share.

Importing this package loads the verifying side only; ``build_bundle`` and
``bundle_for_hash`` load :mod:`ledger.proofs.build` (and with it the chain and its
store) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.proofs.bundle import BUNDLE_FIELDS, FORMAT, MATCH_ATTACHMENT, MATCH_DOCUMENT
from ledger.proofs.verify import (
    AMENDED,
    CHECK_CODES,
    REVOKED,
    TAMPERED,
    UNKNOWN,
    UNSOUND,
    VALID,
    VERDICTS,
    Check,
    SigningValidator,
    TimelineEntry,
    Verification,
    compute_verdict,
    verify_bundle,
    verify_checkpoint,
)

if TYPE_CHECKING:
    from ledger.proofs.build import build_bundle, bundle_for_hash

__all__ = [
    "AMENDED",
    "BUNDLE_FIELDS",
    "CHECK_CODES",
    "FORMAT",
    "MATCH_ATTACHMENT",
    "MATCH_DOCUMENT",
    "REVOKED",
    "TAMPERED",
    "UNKNOWN",
    "UNSOUND",
    "VALID",
    "VERDICTS",
    "Check",
    "SigningValidator",
    "TimelineEntry",
    "Verification",
    "build_bundle",
    "bundle_for_hash",
    "compute_verdict",
    "verify_bundle",
    "verify_checkpoint",
]

_BUILDING = ("build_bundle", "bundle_for_hash")


def __getattr__(name: str) -> Any:
    # The building side on first use only: it imports the chain and its store.
    if name in _BUILDING:
        from ledger.proofs import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
