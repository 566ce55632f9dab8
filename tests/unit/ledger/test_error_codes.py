"""The frozen table of every error code: its class, its parent and its HTTP status.

Codes are the API's problem ``type`` and what the CLI prints, so they never change: a
code renamed or removed, a class renamed, moved to another branch or mapped to another
status fails here. A class added to ``ledger/errors.py`` fails here too until its row is
added below (and to the tree in the module's docstring) on purpose.
"""

from __future__ import annotations

import pytest

from api.errors import status_for
from ledger import errors

ERROR_CODES: tuple[tuple[str, str, str | None, int], ...] = (
    # (code, class name, parent class name, HTTP status)
    ("ledger.error", "LedgerError", None, 500),
    ("encoding.invalid", "EncodingError", "LedgerError", 400),
    ("encoding.truncated", "TruncatedError", "EncodingError", 400),
    ("encoding.trailing_bytes", "TrailingBytesError", "EncodingError", 400),
    ("encoding.unsorted_keys", "UnsortedKeysError", "EncodingError", 400),
    ("encoding.duplicate_key", "DuplicateKeyError", "EncodingError", 400),
    ("encoding.non_minimal_integer", "NonMinimalIntegerError", "EncodingError", 400),
    ("encoding.float", "FloatError", "EncodingError", 400),
    ("encoding.unsupported_type", "UnsupportedTypeError", "EncodingError", 400),
    ("encoding.wrong_type", "WrongTypeError", "EncodingError", 400),
    ("encoding.non_canonical", "NonCanonicalError", "EncodingError", 400),
    ("encoding.too_deep", "NestingTooDeepError", "EncodingError", 400),
    ("encoding.json", "JsonError", "EncodingError", 400),
    ("key.file_invalid", "KeyFileError", "LedgerError", 500),
    ("key.passphrase", "KeyPassphraseError", "KeyFileError", 500),
    ("genesis.invalid", "GenesisError", "LedgerError", 500),
    ("doc.invalid", "DocumentError", "LedgerError", 422),
    ("doc.schema", "DocumentSchemaError", "DocumentError", 422),
    ("doc.country_code", "CountryCodeError", "DocumentError", 422),
    ("doc.currency_code", "CurrencyCodeError", "DocumentError", 422),
    ("doc.hs_code", "HsCodeError", "DocumentError", 422),
    ("doc.locode", "LocodeError", "DocumentError", 422),
    ("doc.datetime", "DateTimeError", "DocumentError", 422),
    ("doc.decimal", "DecimalError", "DocumentError", 422),
    ("doc.procedure_code", "ProcedureCodeError", "DocumentError", 422),
    ("doc.type_unknown", "UnknownDocTypeError", "DocumentError", 422),
    ("doc.json", "DocumentJsonError", "DocumentError", 400),
    ("doc.too_large", "DocumentTooLargeError", "DocumentError", 413),
    ("doc.registration_invalid", "DocumentRegistrationError", "DocumentError", 422),
    ("doc.not_officer_of_zone", "NotOfficerOfZoneError", "DocumentRegistrationError", 422),
    ("doc.id_mismatch", "DocIdMismatchError", "DocumentRegistrationError", 422),
    ("doc.type_mismatch", "DocTypeMismatchError", "DocumentRegistrationError", 422),
    ("doc.hash_mismatch", "DocumentHashMismatchError", "DocumentRegistrationError", 422),
    ("doc.content_missing", "DocumentMissingError", "DocumentRegistrationError", 422),
    ("doc.attachment_invalid", "AttachmentError", "DocumentRegistrationError", 422),
    ("doc.exists", "DocumentExistsError", "DocumentRegistrationError", 409),
    ("doc.not_found", "DocumentNotFoundError", "DocumentRegistrationError", 404),
    ("doc.revoked", "DocumentRevokedError", "DocumentRegistrationError", 409),
    ("doc.stale_supersedes", "StaleSupersedesError", "DocumentRegistrationError", 409),
    ("doc.stale_hash", "StaleRevocationHashError", "DocumentRegistrationError", 409),
    ("tx.invalid", "TransactionError", "LedgerError", 422),
    ("tx.malformed", "MalformedTransactionError", "TransactionError", 400),
    ("tx.signature_invalid", "SignatureInvalidError", "TransactionError", 422),
    ("tx.wrong_chain", "WrongChainError", "TransactionError", 422),
    ("tx.unknown_kind", "UnknownKindError", "TransactionError", 422),
    ("tx.replayed", "ReplayedTransactionError", "TransactionError", 409),
    ("tx.duplicate_in_block", "DuplicateInBlockError", "TransactionError", 409),
    ("tx.officer_revoked", "OfficerRevokedError", "TransactionError", 422),
    ("tx.not_zone_admin", "NotZoneAdminError", "TransactionError", 422),
    ("tx.unknown_zone", "UnknownZoneError", "TransactionError", 422),
    ("tx.officer_already_active", "OfficerAlreadyActiveError", "TransactionError", 409),
    ("tx.officer_not_active", "OfficerNotActiveError", "TransactionError", 409),
    ("tx.too_large", "TransactionTooLargeError", "TransactionError", 413),
    ("tx.zone_removed", "ZoneRemovedError", "TransactionError", 422),
    ("gov.invalid", "GovernanceError", "TransactionError", 422),
    ("gov.not_admin", "GovNotAdminError", "GovernanceError", 422),
    ("gov.proposal_unknown", "GovProposalUnknownError", "GovernanceError", 404),
    ("gov.proposal_expired", "GovProposalExpiredError", "GovernanceError", 409),
    ("gov.proposal_closed", "GovProposalClosedError", "GovernanceError", 409),
    ("gov.already_approved", "GovAlreadyApprovedError", "GovernanceError", 409),
    ("gov.expiry_invalid", "GovExpiryError", "GovernanceError", 422),
    ("gov.zone_exists", "GovZoneExistsError", "GovernanceError", 409),
    ("gov.duplicate_key", "GovDuplicateKeyError", "GovernanceError", 409),
    ("gov.possession_invalid", "GovPossessionError", "GovernanceError", 422),
    ("gov.too_few_validators", "GovTooFewValidatorsError", "GovernanceError", 422),
    ("gov.auditor_exists", "GovAuditorExistsError", "GovernanceError", 409),
    ("gov.auditor_unknown", "GovAuditorUnknownError", "GovernanceError", 422),
    ("gov.params_invalid", "GovParamsError", "GovernanceError", 422),
    ("proof.invalid", "ProofError", "LedgerError", 422),
    ("proof.inclusion_invalid", "InclusionProofError", "ProofError", 422),
    ("proof.consistency_invalid", "ConsistencyProofError", "ProofError", 422),
    ("proof.state_invalid", "StateProofError", "ProofError", 422),
    ("proof.bundle_malformed", "BundleMalformedError", "ProofError", 422),
    ("proof.genesis_mismatch", "BundleGenesisError", "ProofError", 422),
    ("proof.validators_mismatch", "BundleValidatorsError", "ProofError", 422),
    ("proof.header_invalid", "BundleHeaderError", "ProofError", 422),
    ("proof.issuer_invalid", "BundleIssuerError", "ProofError", 422),
    ("proof.history_invalid", "BundleHistoryError", "ProofError", 422),
    ("proof.status_mismatch", "BundleStatusError", "ProofError", 422),
    ("proof.copy_mismatch", "CopyMismatchError", "ProofError", 422),
    ("proof.rollback", "CheckpointRollbackError", "ProofError", 422),
    ("proof.split_view", "SplitViewError", "ProofError", 422),
    ("block.invalid", "BlockError", "LedgerError", 422),
    ("block.malformed", "BlockMalformedError", "BlockError", 422),
    ("block.height", "WrongHeightError", "BlockError", 422),
    ("block.prev_hash", "WrongPrevHashError", "BlockError", 422),
    ("block.proposer", "WrongProposerError", "BlockError", 422),
    ("block.time", "BlockTimeError", "BlockError", 422),
    ("block.tx_count", "TxCountMismatchError", "BlockError", 422),
    ("block.too_many_txs", "BlockTooManyTxsError", "BlockError", 422),
    ("block.log_root", "LogRootMismatchError", "BlockError", 422),
    ("block.log_size", "LogSizeMismatchError", "BlockError", 422),
    ("block.state_root", "StateRootMismatchError", "BlockError", 422),
    ("block.validators_hash", "ValidatorsHashMismatchError", "BlockError", 422),
    ("block.last_commit", "LastCommitMismatchError", "BlockError", 422),
    ("block.chain_id", "BlockChainIdError", "BlockError", 422),
    ("commit.invalid", "CommitError", "LedgerError", 422),
    ("commit.quorum", "CommitQuorumError", "CommitError", 422),
    ("commit.signature_invalid", "CommitSignatureError", "CommitError", 422),
    ("commit.unknown_validator", "CommitUnknownValidatorError", "CommitError", 422),
    ("commit.duplicate_signer", "CommitDuplicateSignerError", "CommitError", 422),
    ("commit.unsorted", "CommitOrderError", "CommitError", 422),
    ("commit.target_mismatch", "CommitTargetError", "CommitError", 422),
    ("vote.invalid", "VoteError", "LedgerError", 422),
    ("vote.signature_invalid", "VoteSignatureError", "VoteError", 422),
    ("vote.evidence_invalid", "EvidenceInvalidError", "VoteError", 422),
    ("store.error", "StoreError", "LedgerError", 500),
    ("store.corrupt", "StoreCorruptError", "StoreError", 500),
    ("store.locked", "StoreLockedError", "StoreError", 500),
    ("store.format", "StoreFormatError", "StoreError", 500),
    ("store.write_failed", "StoreWriteError", "StoreError", 500),
    ("node.error", "NodeError", "LedgerError", 500),
    ("config.invalid", "ConfigError", "NodeError", 500),
    ("mempool.full", "MempoolFullError", "NodeError", 503),
    ("node.unavailable", "NodeUnavailableError", "NodeError", 503),
    ("node.read_only", "NodeReadOnlyError", "NodeUnavailableError", 503),
    ("request.invalid", "RequestError", "LedgerError", 400),
    ("request.malformed", "RequestMalformedError", "RequestError", 400),
    ("request.too_large", "RequestTooLargeError", "RequestError", 413),
    ("request.not_found", "NotFoundError", "RequestError", 404),
    ("auth.invalid", "AuthError", "LedgerError", 401),
    ("auth.missing", "AuthMissingError", "AuthError", 401),
    ("auth.signature_invalid", "AuthSignatureError", "AuthError", 401),
    ("auth.stale", "AuthStaleError", "AuthError", 401),
    ("auth.replayed", "AuthReplayError", "AuthError", 401),
    ("auth.wrong_node", "AuthWrongNodeError", "AuthError", 401),
    ("auth.not_member", "AuthNotMemberError", "AuthError", 403),
    ("peer.invalid", "PeerError", "LedgerError", 400),
    ("peer.malformed", "PeerMalformedError", "PeerError", 400),
    ("peer.unknown_sender", "PeerUnknownSenderError", "PeerError", 403),
    ("peer.sender_mismatch", "PeerSenderMismatchError", "PeerUnknownSenderError", 403),
    ("peer.signature_invalid", "PeerSignatureError", "PeerError", 401),
    ("peer.session_invalid", "PeerSessionError", "PeerSignatureError", 401),
    ("peer.hello_invalid", "PeerHelloError", "PeerSignatureError", 401),
    ("peer.frame_invalid", "PeerFrameError", "PeerSignatureError", 401),
    ("peer.unavailable", "PeerUnavailableError", "PeerError", 503),
    ("audit.invalid", "AuditError", "LedgerError", 422),
    ("audit.missing_block", "AuditMissingBlockError", "AuditError", 422),
    ("audit.extra_block", "AuditExtraBlockError", "AuditError", 422),
    ("audit.missing_commit", "AuditMissingCommitError", "AuditError", 422),
    ("audit.commit_mismatch", "AuditCommitMismatchError", "AuditError", 422),
    ("audit.header_mismatch", "AuditHeaderMismatchError", "AuditError", 422),
    ("audit.head_mismatch", "AuditHeadMismatchError", "AuditError", 422),
    ("audit.genesis_mismatch", "AuditGenesisMismatchError", "AuditError", 422),
)


def defined_classes() -> dict[str, type[errors.LedgerError]]:
    """Every error class of ``ledger.errors`` by code (a test's local subclasses left out)."""
    return {
        cls.code: cls for cls in errors.all_error_classes() if cls.__module__ == errors.__name__
    }


def test_the_table_lists_each_code_once() -> None:
    codes = [row[0] for row in ERROR_CODES]
    assert len(codes) == len(set(codes))


def test_no_code_is_added_renamed_or_removed_unnoticed() -> None:
    defined = set(defined_classes())
    listed = {row[0] for row in ERROR_CODES}
    assert defined - listed == set(), "new codes: add their rows to ERROR_CODES"
    assert listed - defined == set(), "codes are never renamed or removed"


def test_every_class_in_the_module_has_a_row() -> None:
    # A class that forgot its own code would borrow its parent's and hide from the walk by code.
    in_module = {
        value for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.LedgerError)
    }
    assert {cls.__name__ for cls in in_module} == {row[1] for row in ERROR_CODES}
    for cls in in_module:
        assert "code" in vars(cls), f"{cls.__name__} has no code of its own"


@pytest.mark.parametrize(("code", "name", "parent", "status"), ERROR_CODES, ids=[row[0] for row in ERROR_CODES])
def test_code_keeps_its_class_parent_and_status(code: str, name: str, parent: str | None, status: int) -> None:
    cls = defined_classes()[code]
    assert cls.__name__ == name
    assert (cls.__bases__[0].__name__ if cls is not errors.LedgerError else None) == parent
    assert status_for(cls) == status
