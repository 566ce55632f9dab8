"""Every size limit of zoneledger: each a named constant that every path reads.

Three kinds, as the configuration has tiers:

* protocol limits (a transaction or document over one is invalid on every validator;
  changing one is a fork);
* what the HTTP API admits per route, sized to the largest legitimate request;
* what a node remembers about its clients, bounded in bytes so that input nobody
  authenticated cannot grow it.

Sizes to compare with (``scripts/examples`` and ``../shared/samples``): the largest
JSON document is the preferential certificate of origin, 7,106 bytes as kept in
``coo_preferential.json`` and 4,624 as JCS (the TradeTrust ChAFTA sample is 7,416); the
largest sample of any kind a 17,476-byte WCO import declaration (XML); the example
PDF 888 bytes. A transaction envelope without its document is about 285 bytes (570
as hex).

A node's operator can lower any HTTP body limit with ``max_body_bytes`` in
``node.toml`` (a cap over every route, :mod:`node.config`); the per-route limits come
from here.
"""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB

# --- protocol ------------------------------------------------------------------------

MAX_ENVELOPE_BYTES: Final = 16 * KIB
"""A transaction envelope (``cb({"tx", "sig"})``), its document not included."""
MAX_DOCUMENT_BYTES: Final = 512 * KIB
"""A document's JCS bytes: 113 times the largest JSON example, 30 times the largest sample of any kind."""
MAX_NESTING_DEPTH: Final = 64
"""Containers nest at most this deep, in canonical bytes and in documents
(``docs/decisions/0008-nesting-bound.md``; no format of the ledger nests beyond 6)."""
MAX_ATTACHMENTS: Final = 32
"""Files registered beside one document version."""
MAX_REASON_CHARS: Final = 1000
"""An amendment's or revocation's reason, in characters."""
MAX_DOC_ID_CHARS: Final = 200
"""``"<zone_id>/<number>"``, in characters."""
MAX_NAME_CHARS: Final = 255
"""An attachment's file name, in characters."""
MAX_GENESIS_BYTES: Final = 4 * MIB
"""A genesis file."""
MAX_BLOCK_WIRE_BYTES: Final = 64 * MIB
"""A block's wire bytes as decoded (twice the default ``max_block_bytes`` of its transactions)."""
DEFAULT_MAX_BLOCK_BYTES: Final = 32 * MIB
"""Genesis ``consensus.max_block_bytes`` when the genesis does not set it."""
MAX_PEER_MESSAGE_BYTES: Final = 64 * MIB
"""A signed peer message: a proposal carries a whole block, a sync reply a batch of them."""
MAX_PEER_SMALL_MESSAGE_BYTES: Final = 16 * KIB
"""A signed vote, status or block request (a vote is about 400 bytes)."""
MAX_PEER_COMMIT_MESSAGE_BYTES: Final = 1 * MIB
"""A signed commit certificate (about 100 bytes per validator)."""
MAX_SYNC_REPLY_BLOCK_BYTES: Final = 32 * MIB
"""A sync reply stops adding blocks past this many block bytes (within the peer message bound)."""
SYNC_BATCH: Final = 50
"""Blocks asked for and served per sync request."""
MAX_WAL_RECORD_BYTES: Final = 64 * MIB
"""One write-ahead record: a signed message, its lock and, for a proposal, its block."""
MAX_PEER_HELLO_BYTES: Final = 512
"""A peer's session hello (a real one is about 200 bytes)."""
MAX_EVIDENCE_ENTRIES: Final = 10_000
"""Equivocation evidence one node keeps; later evidence is dropped (and counted)."""
MAX_EVIDENCE_ENTRIES_PER_VALIDATOR: Final = 1_000
"""Evidence kept against any one validator (one equivocator cannot crowd out the rest)."""
MAX_EVIDENCE_LINE_BYTES: Final = 16 * KIB
"""Longest evidence line read back (two signed votes or proposals take about 1 KiB)."""
MAX_REMEMBERED_REQUESTS: Final = 100_000
"""Signed member requests remembered against replay until their timestamps expire."""

# --- HTTP request bodies, per route ----------------------------------------------------

MAX_VERIFY_BODY_BYTES: Final = 2 * MAX_DOCUMENT_BYTES
"""``POST /v1/verify`` as JSON: ``{"document": ...}`` holds at most one document, and the
largest registrable one is ``MAX_DOCUMENT_BYTES`` as JCS; twice that leaves room for the
indentation of a copy as people keep it (the example certificate is 1.54 times its JCS
size indented by two spaces, 1.99 times by four)."""
MAX_VERIFY_UPLOAD_BYTES: Final = 8 * MIB
"""``POST /v1/verify`` as a multipart ``file``: a document, or an attachment such as the
PDF of a certificate (888 bytes in the examples; signed and stamped certificate PDFs run
to a few hundred KB). A bigger file can still be verified: the node only hashes it, so
the client sends ``{"hash": ...}`` (``zoneledger verify`` does so by itself)."""
MAX_VERIFY_DOCUMENT_BYTES: Final = MAX_VERIFY_BODY_BYTES
"""An uploaded file is also parsed as a JSON document only up to this size: anything
bigger cannot be a registered document's copy, and is only hashed."""
MAX_SUBMISSION_BYTES: Final = MAX_VERIFY_BODY_BYTES + 4 * MAX_ENVELOPE_BYTES
"""``POST /v1/transactions``: the largest document as ``/v1/verify`` admits it (1 MiB)
beside its envelope as hex (at most 32 KiB), with room; or a batch of about 200
certificates like the example (envelope as hex and document, 5.2 KB each). Bigger
batches are sent as several requests: the work of parsing a body is paid in single
calls that hold the interpreter (about 80 ms for the worst MiB of MessagePack), so
the bound is what keeps every pause of the node's event loop short."""
MAX_SUBMISSION_BATCH: Final = 5000
"""Transactions in one submission batch (a count; ``MAX_SUBMISSION_BYTES`` usually binds first)."""
MAX_PEER_BODY_BYTES: Final = MAX_PEER_MESSAGE_BYTES
"""``POST /peer/v1/message``: one signed peer message."""
MAX_OTHER_BODY_BYTES: Final = 16 * KIB
"""Every other route: the rest of the API is ``GET``, whose member requests sign an empty body."""

# --- what a node remembers ---------------------------------------------------------------

MAX_ECHO_CHARS: Final = 80
"""An error message quotes at most this many characters of a value it was given, then
the value's full size (``…(15000 bytes)``): enough for a hash in hex, a chain id or a
document number whole. Documents' errors cut at the same length."""
MAX_REJECTION_MESSAGE_CHARS: Final = 300
"""The message kept with a rejected transaction (its code is kept whole)."""
MAX_REJECTIONS_BYTES: Final = 16 * MIB
"""All remembered rejections of one node together, each counted as its message and 256
bytes of objects: about 45,000 with typical messages, 29,000 with the longest; the
oldest are forgotten first."""
MAX_DECODED_ENVELOPES_BYTES: Final = 64 * MIB
"""The memory of decoded envelopes whose signatures verified, each counted as three times
its bytes (the envelope, what its signature covers, its decoded fields) and 1 KiB of
objects: about 35,000 typical envelopes, 1,300 of the largest."""
DEFAULT_MEMPOOL_MAX_BYTES: Final = 256 * MIB
"""Pending transaction and document bytes before submissions get 503 (``node.toml``
``mempool_max_bytes`` overrides)."""
DEFAULT_MAX_BODY_BYTES: Final = 32 * MIB
"""The operator's cap over every route's body limit (``node.toml`` ``max_body_bytes``)."""
