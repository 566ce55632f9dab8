"""The one error hierarchy of zoneledger.

Every failure the ledger can report is a subclass of :class:`LedgerError` with a
stable ``code``. Codes are part of the external contract: the API uses them as the
problem+json ``type`` and the CLI prints them. A code is never reused or renamed, and a
class that moves to another branch keeps its code (tests/unit/ledger/test_error_codes.py
holds the table of every code, class, parent and HTTP status).

    LedgerError                          ledger.error
    ├── EncodingError                    encoding.invalid
    │   ├── TruncatedError               encoding.truncated
    │   ├── TrailingBytesError           encoding.trailing_bytes
    │   ├── UnsortedKeysError            encoding.unsorted_keys
    │   ├── DuplicateKeyError            encoding.duplicate_key
    │   ├── NonMinimalIntegerError       encoding.non_minimal_integer
    │   ├── FloatError                   encoding.float
    │   ├── UnsupportedTypeError         encoding.unsupported_type
    │   ├── WrongTypeError               encoding.wrong_type     (e.g. str sent as bin)
    │   ├── NonCanonicalError            encoding.non_canonical  (any other difference)
    │   ├── NestingTooDeepError          encoding.too_deep       (containers beyond 64 deep)
    │   └── JsonError                    encoding.json
    ├── KeyFileError                     key.file_invalid
    │   └── KeyPassphraseError           key.passphrase
    ├── GenesisError                     genesis.invalid
    ├── DocumentError                    doc.invalid           (has .path; the content rules first)
    │   ├── DocumentSchemaError          doc.schema
    │   ├── CountryCodeError             doc.country_code
    │   ├── CurrencyCodeError            doc.currency_code
    │   ├── HsCodeError                  doc.hs_code
    │   ├── LocodeError                  doc.locode
    │   ├── DateTimeError                doc.datetime
    │   ├── DecimalError                 doc.decimal
    │   ├── ProcedureCodeError           doc.procedure_code
    │   ├── UnknownDocTypeError          doc.type_unknown
    │   ├── DocumentJsonError            doc.json
    │   ├── DocumentTooLargeError        doc.too_large
    │   └── DocumentRegistrationError    doc.registration_invalid  (the transaction that registers it)
    │       ├── NotOfficerOfZoneError    doc.not_officer_of_zone
    │       ├── DocIdMismatchError       doc.id_mismatch
    │       ├── DocTypeMismatchError     doc.type_mismatch
    │       ├── DocumentHashMismatchError  doc.hash_mismatch
    │       ├── DocumentMissingError     doc.content_missing
    │       ├── AttachmentError          doc.attachment_invalid
    │       ├── DocumentExistsError      doc.exists            (and below: against the ledger's state)
    │       ├── DocumentNotFoundError    doc.not_found
    │       ├── DocumentRevokedError     doc.revoked
    │       ├── StaleSupersedesError     doc.stale_supersedes
    │       └── StaleRevocationHashError doc.stale_hash
    ├── TransactionError                 tx.invalid
    │   ├── MalformedTransactionError    tx.malformed
    │   ├── SignatureInvalidError        tx.signature_invalid
    │   ├── WrongChainError              tx.wrong_chain
    │   ├── UnknownKindError             tx.unknown_kind
    │   ├── ReplayedTransactionError     tx.replayed
    │   ├── DuplicateInBlockError        tx.duplicate_in_block
    │   ├── OfficerRevokedError          tx.officer_revoked
    │   ├── NotZoneAdminError            tx.not_zone_admin
    │   ├── UnknownZoneError             tx.unknown_zone
    │   ├── OfficerAlreadyActiveError    tx.officer_already_active
    │   ├── OfficerNotActiveError        tx.officer_not_active
    │   ├── TransactionTooLargeError     tx.too_large
    │   ├── ZoneRemovedError             tx.zone_removed       (the zone has left the alliance)
    │   └── GovernanceError              gov.invalid           (DESIGN §12: proposals, approvals, keys)
    │       ├── GovNotAdminError         gov.not_admin         (not the admin of an active zone)
    │       ├── GovProposalUnknownError  gov.proposal_unknown
    │       ├── GovProposalExpiredError  gov.proposal_expired
    │       ├── GovProposalClosedError   gov.proposal_closed   (executed already)
    │       ├── GovAlreadyApprovedError  gov.already_approved
    │       ├── GovExpiryError           gov.expiry_invalid
    │       ├── GovZoneExistsError       gov.zone_exists       (a zone id is never reused)
    │       ├── GovDuplicateKeyError     gov.duplicate_key     (a key serves one role of one zone, ever)
    │       ├── GovPossessionError       gov.possession_invalid
    │       ├── GovTooFewValidatorsError gov.too_few_validators
    │       ├── GovAuditorExistsError    gov.auditor_exists
    │       ├── GovAuditorUnknownError   gov.auditor_unknown
    │       └── GovParamsError           gov.params_invalid
    ├── ProofError                       proof.invalid
    │   ├── InclusionProofError          proof.inclusion_invalid
    │   ├── ConsistencyProofError        proof.consistency_invalid
    │   ├── StateProofError              proof.state_invalid
    │   ├── BundleMalformedError         proof.bundle_malformed   (not a zoneledger-proof/1 bundle)
    │   ├── BundleGenesisError           proof.genesis_mismatch   (another chain or genesis)
    │   ├── BundleValidatorsError        proof.validators_mismatch
    │   ├── BundleHeaderError            proof.header_invalid
    │   ├── BundleIssuerError            proof.issuer_invalid
    │   ├── BundleHistoryError           proof.history_invalid
    │   ├── BundleStatusError            proof.status_mismatch
    │   ├── CopyMismatchError            proof.copy_mismatch      (the copy held is no registered version)
    │   ├── CheckpointRollbackError      proof.rollback           (a node went back in height or log size)
    │   └── SplitViewError               proof.split_view         (two blocks at one height)
    ├── BlockError                       block.invalid
    │   ├── BlockMalformedError          block.malformed
    │   ├── WrongHeightError             block.height
    │   ├── WrongPrevHashError           block.prev_hash
    │   ├── WrongProposerError           block.proposer
    │   ├── BlockTimeError               block.time
    │   ├── TxCountMismatchError         block.tx_count
    │   ├── BlockTooManyTxsError         block.too_many_txs   (over the chain's max_block_txs)
    │   ├── LogRootMismatchError         block.log_root
    │   ├── LogSizeMismatchError         block.log_size
    │   ├── StateRootMismatchError       block.state_root
    │   ├── ValidatorsHashMismatchError  block.validators_hash
    │   ├── LastCommitMismatchError      block.last_commit
    │   └── BlockChainIdError            block.chain_id
    ├── CommitError                      commit.invalid
    │   ├── CommitQuorumError            commit.quorum
    │   ├── CommitSignatureError         commit.signature_invalid
    │   ├── CommitUnknownValidatorError  commit.unknown_validator
    │   ├── CommitDuplicateSignerError   commit.duplicate_signer
    │   ├── CommitOrderError             commit.unsorted
    │   └── CommitTargetError            commit.target_mismatch
    ├── VoteError                        vote.invalid
    │   ├── VoteSignatureError           vote.signature_invalid
    │   └── EvidenceInvalidError         vote.evidence_invalid  (not a proof of equivocation)
    ├── StoreError                       store.error
    │   ├── StoreCorruptError            store.corrupt
    │   ├── StoreLockedError             store.locked
    │   ├── StoreFormatError             store.format
    │   └── StoreWriteError              store.write_failed  (an append that is not on disk)
    ├── NodeError                        node.error          (the node, not the request: its settings, its load)
    │   ├── ConfigError                  config.invalid
    │   ├── MempoolFullError             mempool.full        (retry later)
    │   └── NodeUnavailableError         node.unavailable    (retry later)
    │       └── NodeReadOnlyError        node.read_only      (an observer: submit to a validator)
    ├── RequestError                     request.invalid
    │   ├── RequestMalformedError        request.malformed
    │   ├── RequestTooLargeError         request.too_large
    │   └── NotFoundError                request.not_found
    ├── AuthError                        auth.invalid
    │   ├── AuthMissingError             auth.missing
    │   ├── AuthSignatureError           auth.signature_invalid
    │   ├── AuthStaleError               auth.stale
    │   ├── AuthReplayError              auth.replayed
    │   ├── AuthWrongNodeError           auth.wrong_node     (signed for another node)
    │   └── AuthNotMemberError           auth.not_member
    ├── PeerError                        peer.invalid
    │   ├── PeerMalformedError           peer.malformed
    │   ├── PeerUnknownSenderError       peer.unknown_sender
    │   │   └── PeerSenderMismatchError  peer.sender_mismatch  (a message not from its session's validator)
    │   ├── PeerSignatureError           peer.signature_invalid
    │   │   ├── PeerSessionError         peer.session_invalid  (no live session token)
    │   │   ├── PeerHelloError           peer.hello_invalid    (a hello not fresh or not for this node)
    │   │   └── PeerFrameError           peer.frame_invalid    (a stream frame without its stream's tag)
    │   └── PeerUnavailableError         peer.unavailable
    └── AuditError                       audit.invalid       (what a replay finds in the source)
        ├── AuditMissingBlockError       audit.missing_block
        ├── AuditExtraBlockError         audit.extra_block
        ├── AuditMissingCommitError      audit.missing_commit
        ├── AuditCommitMismatchError     audit.commit_mismatch
        ├── AuditHeaderMismatchError     audit.header_mismatch
        ├── AuditHeadMismatchError       audit.head_mismatch
        └── AuditGenesisMismatchError    audit.genesis_mismatch

Messages follow "expected X, got Y" where that reads naturally. Where the failure is a
value that differs (a root, a hash, a height, a signature), the raising site also passes
``expected=`` and ``found=``, kept as text on the error (bytes as hex), so that a reader
such as the auditor's report never parses the message.
"""

from __future__ import annotations

from typing import ClassVar

Shown = str | bytes | int
"""A value a rule compares, as an error carries it: bytes become lowercase hex, integers text."""


def _show(value: Shown | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.hex() if isinstance(value, bytes) else str(value)


class LedgerError(Exception):
    """Root of every zoneledger error; ``code`` is stable and never reused."""

    code: ClassVar[str] = "ledger.error"
    title: ClassVar[str] = "Ledger error"
    tx_index: int | None = None
    """Position in its block of the transaction that broke the rule, when one did."""

    def __init__(
        self, message: str, *, path: str | None = None, expected: Shown | None = None, found: Shown | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.expected = _show(expected)
        """What the rule expects, when the failure is a value that differs (bytes as hex)."""
        self.found = _show(found)
        """What was there instead, in the same form; set together with ``expected``."""

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message

    def one_line(self) -> str:
        """``code: message`` on one line, for the CLI and logs."""
        return f"{self.code}: {self}".replace("\n", " ")


# --- encoding --------------------------------------------------------------


class EncodingError(LedgerError):
    code = "encoding.invalid"
    title = "Invalid canonical encoding"


class TruncatedError(EncodingError):
    code = "encoding.truncated"
    title = "Encoding ends early"


class TrailingBytesError(EncodingError):
    code = "encoding.trailing_bytes"
    title = "Bytes after the encoded value"


class UnsortedKeysError(EncodingError):
    code = "encoding.unsorted_keys"
    title = "Map keys not sorted"


class DuplicateKeyError(EncodingError):
    code = "encoding.duplicate_key"
    title = "Map key repeated"


class NonMinimalIntegerError(EncodingError):
    code = "encoding.non_minimal_integer"
    title = "Integer not in its smallest form"


class FloatError(EncodingError):
    code = "encoding.float"
    title = "Floats are not allowed"


class UnsupportedTypeError(EncodingError):
    code = "encoding.unsupported_type"
    title = "Type not allowed in canonical encoding"


class WrongTypeError(EncodingError):
    code = "encoding.wrong_type"
    title = "Field has the wrong type"


class NonCanonicalError(EncodingError):
    code = "encoding.non_canonical"
    title = "Encoding is not canonical"


class NestingTooDeepError(EncodingError):
    code = "encoding.too_deep"
    title = "Containers nested too deep"


class JsonError(EncodingError):
    code = "encoding.json"
    title = "Value cannot be canonicalised as JSON"


# --- keys ------------------------------------------------------------------


class KeyFileError(LedgerError):
    code = "key.file_invalid"
    title = "Key file unreadable"


class KeyPassphraseError(KeyFileError):
    code = "key.passphrase"
    title = "Wrong or missing key passphrase"


# --- genesis ---------------------------------------------------------------


class GenesisError(LedgerError):
    code = "genesis.invalid"
    title = "Invalid genesis"


# --- documents -------------------------------------------------------------


class DocumentError(LedgerError):
    code = "doc.invalid"
    title = "Invalid document"


class DocumentSchemaError(DocumentError):
    code = "doc.schema"
    title = "Document does not match its schema"


class CountryCodeError(DocumentError):
    code = "doc.country_code"
    title = "Not an ISO 3166-1 alpha-2 country code"


class CurrencyCodeError(DocumentError):
    code = "doc.currency_code"
    title = "Not an ISO 4217 currency code"


class HsCodeError(DocumentError):
    code = "doc.hs_code"
    title = "Not an HS code"


class LocodeError(DocumentError):
    code = "doc.locode"
    title = "Not a UN/LOCODE"


class DateTimeError(DocumentError):
    code = "doc.datetime"
    title = "Not an RFC 3339 date-time"


class DecimalError(DocumentError):
    code = "doc.decimal"
    title = "Not a decimal string"


class ProcedureCodeError(DocumentError):
    code = "doc.procedure_code"
    title = "Not a customs procedure code"


class UnknownDocTypeError(DocumentError):
    code = "doc.type_unknown"
    title = "Unknown document type"


class DocumentJsonError(DocumentError):
    code = "doc.json"
    title = "Document is not acceptable JSON"


class DocumentTooLargeError(DocumentError):
    code = "doc.too_large"
    title = "Document too large"


# --- document registration: the transaction that registers a document --------


class DocumentRegistrationError(DocumentError):
    code = "doc.registration_invalid"
    title = "Document registration breaks a rule"


class NotOfficerOfZoneError(DocumentRegistrationError):
    code = "doc.not_officer_of_zone"
    title = "Signer is not an officer of the document's zone"


class DocIdMismatchError(DocumentRegistrationError):
    code = "doc.id_mismatch"
    title = "doc_id does not match the document's own number"


class DocTypeMismatchError(DocumentRegistrationError):
    code = "doc.type_mismatch"
    title = "Amendment changes the document type"


class DocumentHashMismatchError(DocumentRegistrationError):
    code = "doc.hash_mismatch"
    title = "Document content does not match doc_hash"


class DocumentMissingError(DocumentRegistrationError):
    code = "doc.content_missing"
    title = "Document content missing"


class AttachmentError(DocumentRegistrationError):
    code = "doc.attachment_invalid"
    title = "Invalid attachment descriptor"


class DocumentExistsError(DocumentRegistrationError):
    code = "doc.exists"
    title = "Document id already issued"


class DocumentNotFoundError(DocumentRegistrationError):
    code = "doc.not_found"
    title = "No such document"


class DocumentRevokedError(DocumentRegistrationError):
    code = "doc.revoked"
    title = "Document is revoked"


class StaleSupersedesError(DocumentRegistrationError):
    code = "doc.stale_supersedes"
    title = "Amendment does not supersede the current version"


class StaleRevocationHashError(DocumentRegistrationError):
    code = "doc.stale_hash"
    title = "Revocation does not name the current version"


# --- transactions ----------------------------------------------------------


class TransactionError(LedgerError):
    code = "tx.invalid"
    title = "Invalid transaction"


class MalformedTransactionError(TransactionError):
    code = "tx.malformed"
    title = "Malformed transaction"


class SignatureInvalidError(TransactionError):
    code = "tx.signature_invalid"
    title = "Transaction signature does not verify"


class WrongChainError(TransactionError):
    code = "tx.wrong_chain"
    title = "Transaction is for another chain"


class UnknownKindError(TransactionError):
    code = "tx.unknown_kind"
    title = "Unknown transaction kind"


class ReplayedTransactionError(TransactionError):
    code = "tx.replayed"
    title = "Transaction already committed"


class DuplicateInBlockError(TransactionError):
    code = "tx.duplicate_in_block"
    title = "Transaction appears twice in one block"


class OfficerRevokedError(TransactionError):
    code = "tx.officer_revoked"
    title = "Officer key has been revoked"


class NotZoneAdminError(TransactionError):
    code = "tx.not_zone_admin"
    title = "Signer is not the zone's admin"


class UnknownZoneError(TransactionError):
    code = "tx.unknown_zone"
    title = "No such zone"


class OfficerAlreadyActiveError(TransactionError):
    code = "tx.officer_already_active"
    title = "Officer key is already registered"


class OfficerNotActiveError(TransactionError):
    code = "tx.officer_not_active"
    title = "Officer key is not active in this zone"


class TransactionTooLargeError(TransactionError):
    code = "tx.too_large"
    title = "Transaction too large"


class ZoneRemovedError(TransactionError):
    code = "tx.zone_removed"
    title = "The zone has left the alliance"


class GovernanceError(TransactionError):
    code = "gov.invalid"
    title = "Governance transaction refused"


class GovNotAdminError(GovernanceError):
    code = "gov.not_admin"
    title = "Signer is not the admin of an active zone"


class GovProposalUnknownError(GovernanceError):
    code = "gov.proposal_unknown"
    title = "No such proposal"


class GovProposalExpiredError(GovernanceError):
    code = "gov.proposal_expired"
    title = "Proposal has expired"


class GovProposalClosedError(GovernanceError):
    code = "gov.proposal_closed"
    title = "Proposal was executed already"


class GovAlreadyApprovedError(GovernanceError):
    code = "gov.already_approved"
    title = "Zone has approved this proposal already"


class GovExpiryError(GovernanceError):
    code = "gov.expiry_invalid"
    title = "Proposal expiry height out of range"


class GovZoneExistsError(GovernanceError):
    code = "gov.zone_exists"
    title = "Zone id is taken"


class GovDuplicateKeyError(GovernanceError):
    code = "gov.duplicate_key"
    title = "Key is already in use"


class GovPossessionError(GovernanceError):
    code = "gov.possession_invalid"
    title = "Proof of possession does not verify"


class GovTooFewValidatorsError(GovernanceError):
    code = "gov.too_few_validators"
    title = "Change would leave fewer than 4 validators"


class GovAuditorExistsError(GovernanceError):
    code = "gov.auditor_exists"
    title = "Key is an auditor already"


class GovAuditorUnknownError(GovernanceError):
    code = "gov.auditor_unknown"
    title = "Key is not an auditor"


class GovParamsError(GovernanceError):
    code = "gov.params_invalid"
    title = "Consensus setting out of range"


# --- proofs ----------------------------------------------------------------


class ProofError(LedgerError):
    code = "proof.invalid"
    title = "Proof does not verify"


class InclusionProofError(ProofError):
    code = "proof.inclusion_invalid"
    title = "Inclusion proof does not verify"


class ConsistencyProofError(ProofError):
    code = "proof.consistency_invalid"
    title = "Consistency proof does not verify"


class StateProofError(ProofError):
    code = "proof.state_invalid"
    title = "State proof does not verify"


class BundleMalformedError(ProofError):
    code = "proof.bundle_malformed"
    title = "Not a proof bundle"


class BundleGenesisError(ProofError):
    code = "proof.genesis_mismatch"
    title = "Proof is for another chain"


class BundleValidatorsError(ProofError):
    code = "proof.validators_mismatch"
    title = "Proof names other validators than genesis"


class BundleHeaderError(ProofError):
    code = "proof.header_invalid"
    title = "Proof's block header does not fit the chain"


class BundleIssuerError(ProofError):
    code = "proof.issuer_invalid"
    title = "Proof's issuer is not a member zone"


class BundleHistoryError(ProofError):
    code = "proof.history_invalid"
    title = "Proof's document history is inconsistent"


class BundleStatusError(ProofError):
    code = "proof.status_mismatch"
    title = "Proof's document status disagrees with its history"


class CopyMismatchError(ProofError):
    code = "proof.copy_mismatch"
    title = "Copy matches no registered version"


class CheckpointRollbackError(ProofError):
    code = "proof.rollback"
    title = "Node went back in history"


class SplitViewError(ProofError):
    code = "proof.split_view"
    title = "Node shows two different blocks at one height"


# --- blocks ----------------------------------------------------------------


class BlockError(LedgerError):
    code = "block.invalid"
    title = "Invalid block"


class BlockMalformedError(BlockError):
    code = "block.malformed"
    title = "Malformed block"


class WrongHeightError(BlockError):
    code = "block.height"
    title = "Block has the wrong height"


class WrongPrevHashError(BlockError):
    code = "block.prev_hash"
    title = "Block does not link to the previous block"


class WrongProposerError(BlockError):
    code = "block.proposer"
    title = "Block names the wrong proposer"


class BlockTimeError(BlockError):
    code = "block.time"
    title = "Block time out of bounds"


class TxCountMismatchError(BlockError):
    code = "block.tx_count"
    title = "Header tx_count disagrees with the body"


class BlockTooManyTxsError(BlockError):
    code = "block.too_many_txs"
    title = "Block holds more transactions than the chain allows"


class LogRootMismatchError(BlockError):
    code = "block.log_root"
    title = "Header log_root disagrees with re-execution"


class LogSizeMismatchError(BlockError):
    code = "block.log_size"
    title = "Header log_size disagrees with re-execution"


class StateRootMismatchError(BlockError):
    code = "block.state_root"
    title = "Header state_root disagrees with re-execution"


class ValidatorsHashMismatchError(BlockError):
    code = "block.validators_hash"
    title = "Header validators_hash disagrees with the validator set"


class LastCommitMismatchError(BlockError):
    code = "block.last_commit"
    title = "Block's last commit is wrong"


class BlockChainIdError(BlockError):
    code = "block.chain_id"
    title = "Block is for another chain"


# --- commit certificates and votes -----------------------------------------


class CommitError(LedgerError):
    code = "commit.invalid"
    title = "Invalid commit certificate"


class CommitQuorumError(CommitError):
    code = "commit.quorum"
    title = "Commit certificate lacks a quorum"


class CommitSignatureError(CommitError):
    code = "commit.signature_invalid"
    title = "Commit signature does not verify"


class CommitUnknownValidatorError(CommitError):
    code = "commit.unknown_validator"
    title = "Commit signed by an index outside the validator set"


class CommitDuplicateSignerError(CommitError):
    code = "commit.duplicate_signer"
    title = "Validator signs the commit twice"


class CommitOrderError(CommitError):
    code = "commit.unsorted"
    title = "Commit signatures not sorted by validator"


class CommitTargetError(CommitError):
    code = "commit.target_mismatch"
    title = "Commit certificate is for another block"


class VoteError(LedgerError):
    code = "vote.invalid"
    title = "Invalid vote"


class VoteSignatureError(VoteError):
    code = "vote.signature_invalid"
    title = "Vote signature does not verify"


class EvidenceInvalidError(VoteError):
    code = "vote.evidence_invalid"
    title = "Not evidence of an equivocation"


# --- storage ---------------------------------------------------------------


class StoreError(LedgerError):
    code = "store.error"
    title = "Storage failure"


class StoreCorruptError(StoreError):
    code = "store.corrupt"
    title = "Stored data is inconsistent"


class StoreLockedError(StoreError):
    code = "store.locked"
    title = "Store is in use by another process"


class StoreFormatError(StoreError):
    code = "store.format"
    title = "Store was written in another storage format"


class StoreWriteError(StoreError):
    code = "store.write_failed"
    title = "Record could not be made durable"


# --- the node itself: its settings, its load (not the request's fault) ---------


class NodeError(LedgerError):
    code = "node.error"
    title = "Node-side failure"


class ConfigError(NodeError):
    code = "config.invalid"
    title = "Invalid node configuration"


class MempoolFullError(NodeError):
    code = "mempool.full"
    title = "Mempool is full; retry later"


class NodeUnavailableError(NodeError):
    code = "node.unavailable"
    title = "Node cannot serve this now"


class NodeReadOnlyError(NodeUnavailableError):
    """A write sent to an observer: it holds no validator key and takes no transactions;
    the detail names the validators to submit to (``docs/decisions/0016-observer-nodes.md``)."""

    code = "node.read_only"
    title = "Node is a read-only observer; submit to a validator"


# --- requests, authentication, peers (the network layers) -------------------


class RequestError(LedgerError):
    code = "request.invalid"
    title = "Invalid request"


class RequestMalformedError(RequestError):
    code = "request.malformed"
    title = "Request body cannot be read"


class RequestTooLargeError(RequestError):
    code = "request.too_large"
    title = "Request body too large"


class NotFoundError(RequestError):
    code = "request.not_found"
    title = "Not found"


class AuthError(LedgerError):
    code = "auth.invalid"
    title = "Request authentication failed"


class AuthMissingError(AuthError):
    code = "auth.missing"
    title = "Request is not signed"


class AuthSignatureError(AuthError):
    code = "auth.signature_invalid"
    title = "Request signature does not verify"


class AuthStaleError(AuthError):
    code = "auth.stale"
    title = "Request timestamp outside the accepted window"


class AuthReplayError(AuthError):
    code = "auth.replayed"
    title = "Request already seen"


class AuthWrongNodeError(AuthError):
    code = "auth.wrong_node"
    title = "Request is addressed to another node"


class AuthNotMemberError(AuthError):
    code = "auth.not_member"
    title = "Key is not an officer or auditor"


class PeerError(LedgerError):
    code = "peer.invalid"
    title = "Invalid peer message"


class PeerMalformedError(PeerError):
    code = "peer.malformed"
    title = "Peer message cannot be read"


class PeerUnknownSenderError(PeerError):
    code = "peer.unknown_sender"
    title = "Peer message from a non-validator"


class PeerSignatureError(PeerError):
    code = "peer.signature_invalid"
    title = "Peer message signature does not verify"


class PeerSenderMismatchError(PeerUnknownSenderError):
    code = "peer.sender_mismatch"
    title = "Peer message from another validator than its session's"


class PeerSessionError(PeerSignatureError):
    code = "peer.session_invalid"
    title = "Peer request without a live session token"


class PeerHelloError(PeerSignatureError):
    code = "peer.hello_invalid"
    title = "Peer hello is not fresh or not for this node"


class PeerFrameError(PeerSignatureError):
    code = "peer.frame_invalid"
    title = "Peer stream frame does not carry its stream's tag"


class PeerUnavailableError(PeerError):
    code = "peer.unavailable"
    title = "Peer did not answer"


# --- auditing (ledger.audit): what a replay from genesis finds in the source ----


class AuditError(LedgerError):
    code = "audit.invalid"
    title = "Audit found a discrepancy"


class AuditMissingBlockError(AuditError):
    code = "audit.missing_block"
    title = "A block up to the claimed head is missing"


class AuditExtraBlockError(AuditError):
    code = "audit.extra_block"
    title = "The source holds a block after its claimed head"


class AuditMissingCommitError(AuditError):
    code = "audit.missing_commit"
    title = "A block has no stored commit certificate"


class AuditCommitMismatchError(AuditError):
    code = "audit.commit_mismatch"
    title = "Stored certificate differs from the one the next block carries"


class AuditHeaderMismatchError(AuditError):
    code = "audit.header_mismatch"
    title = "Stored header differs from the block's header"


class AuditHeadMismatchError(AuditError):
    code = "audit.head_mismatch"
    title = "Claimed head differs from the replayed chain"


class AuditGenesisMismatchError(AuditError):
    code = "audit.genesis_mismatch"
    title = "Source belongs to another genesis"


def all_error_classes() -> list[type[LedgerError]]:
    """Every class in the hierarchy, root first (for code-uniqueness checks and API mapping)."""
    found: list[type[LedgerError]] = []
    pending: list[type[LedgerError]] = [LedgerError]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
