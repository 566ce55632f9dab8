// The proof-bundle verifier of the page: DESIGN §2, §5-7 and §9, in the browser.
//
// Trusts only the alliance's genesis (its hash pinned by the page's configuration). A
// node supplies the bundle; every check here is recomputed locally: SHA-256 and Ed25519
// through WebCrypto, canonical bytes through @msgpack/msgpack (sorted keys, minimal
// integers, re-encoded to refuse malleable input), RFC 8785 through `canonicalize`.
//
// Verbs as on the Python side: compute* is pure, is* answers yes/no, validate* throws a
// CheckFailure, verify* returns a report. The check codes mirror the node's:
// genesis, validators, header, commit, inclusion, signature, issuer, integrity,
// history, status. Any failed check makes the verdict "could not be verified".

import { decode, encode } from "./vendor/msgpack/index.mjs";
import canonicalize from "./vendor/canonicalize/canonicalize.js";

export const BUNDLE_FORMAT = "zoneledger-proof/2";
// Both formats are read: /1 (validators are genesis's) and /2 (DESIGN §12: /1 plus the
// validator-set history since genesis and the issuing officer's and zone's records).
export const BUNDLE_FORMATS = ["zoneledger-proof/1", "zoneledger-proof/2"];
const MAX_SET_CHANGES = 10000;
export const CHECK_CODES = [
  "genesis", "validators", "header", "commit", "inclusion",
  "signature", "issuer", "integrity", "history", "status",
];
export const VERDICTS = ["valid", "amended", "revoked", "tampered", "unknown", "could not be verified"];
export const TX_DOMAIN = new TextEncoder().encode("zoneledger/tx/v1\0");
export const VOTE_DOMAIN = new TextEncoder().encode("zoneledger/vote/v1\0");
const EMPTY_HASH = new Uint8Array(32);
const KIND_ISSUE = "doc.issue";
const KIND_AMEND = "doc.amend";
const KIND_REVOKE = "doc.revoke";
// The field holding a document's own number, per document type (ledger/documents.py).
export const NUMBER_FIELDS = {
  certificate_of_origin: "iD",
  customs_declaration: "declarationId",
  commercial_invoice: "id",
  bill_of_lading: "blNumber",
  certificate_of_non_manipulation: "id",
};

/** A check that did not hold; its message says what was expected and what was found. */
export class CheckFailure extends Error {}

function fail(message) {
  throw new CheckFailure(message);
}

// --- bytes, hex, hashes ----------------------------------------------------

export function hexToBytes(hex, what = "value", length = null) {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/.test(hex)) {
    fail(`${what}: expected lowercase hex, got ${describe(hex)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  if (length !== null && out.length !== length) fail(`${what}: expected ${length} bytes, got ${out.length}`);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function isEqualBytes(a, b) {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function describe(value) {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}

function short(hex) {
  return typeof hex === "string" ? hex.slice(0, 16) + "…" : String(hex);
}

// --- canonical bytes (DESIGN §2) -------------------------------------------

const CODEC = { sortKeys: true, useBigInt64: true };

/** cb(x): MessagePack with sorted keys and minimal integers. */
export function encodeCanonical(value) {
  return encode(withWideIntegersAsBigInt(value), CODEC);
}

// With useBigInt64 the encoder writes a *number* beyond 32 bits as a float; cb needs
// uint64/int64 there, which it writes for a bigint.
function withWideIntegersAsBigInt(value) {
  if (typeof value === "number" && Number.isInteger(value) && (value > 0xffffffff || value < -0x80000000)) return BigInt(value);
  if (Array.isArray(value)) return value.map(withWideIntegersAsBigInt);
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withWideIntegersAsBigInt(v)]));
  }
  return value;
}

/** Decode canonical bytes; refuse anything cb would not have produced. */
export function decodeCanonical(bytes, what) {
  let value;
  try {
    value = decode(bytes, CODEC);
  } catch (exc) {
    fail(`${what}: expected MessagePack, got unreadable bytes (${exc.message})`);
  }
  let again;
  try {
    again = encodeCanonical(value);
  } catch (exc) {
    fail(`${what}: expected canonical MessagePack, got a value that cannot be re-encoded`);
  }
  if (!isEqualBytes(again, bytes)) fail(`${what}: expected canonical bytes (sorted keys, minimal integers), got others`);
  if (hasFloat(value)) fail(`${what}: expected no floats, got one`);
  return value;
}

function hasFloat(value) {
  if (typeof value === "number") return !Number.isInteger(value);
  if (Array.isArray(value)) return value.some(hasFloat);
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) return Object.values(value).some(hasFloat);
  return false;
}

/** A decoded integer (number or bigint) as a safe JS number. */
export function toInt(value, what) {
  if (typeof value === "bigint") {
    if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what}: expected an integer below 2^53, got ${value}`);
    return Number(value);
  }
  if (!Number.isSafeInteger(value)) fail(`${what}: expected an integer, got ${describe(value)}`);
  return value;
}

function expectMap(value, what, keys) {
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    fail(`${what}: expected a map, got ${describe(value)}`);
  }
  if (keys) {
    const got = Object.keys(value).sort().join(",");
    const want = [...keys].sort().join(",");
    if (got !== want) fail(`${what}: expected fields ${want}, got ${got}`);
  }
  return value;
}

function expectBin(value, what, length) {
  if (!(value instanceof Uint8Array) || (length !== undefined && value.length !== length)) {
    fail(`${what}: expected ${length ?? "some"} bytes, got ${describe(value)}`);
  }
  return value;
}

function expectStr(value, what) {
  if (typeof value !== "string") fail(`${what}: expected text, got ${describe(value)}`);
  return value;
}

// --- documents and genesis (RFC 8785) --------------------------------------

/** doc_hash = H(JCS(document)), hex. */
export async function computeDocumentHash(document) {
  return bytesToHex(await sha256(new TextEncoder().encode(canonicalize(document))));
}

/** genesis_hash = H(JCS(genesis)), hex. */
export async function computeGenesisHash(genesis) {
  return computeDocumentHash(genesis);
}

/** H(file bytes), hex. */
export async function computeFileHash(bytes) {
  return bytesToHex(await sha256(bytes));
}

export function getValidatorKeys(genesis) {
  return genesis.zones.map((z) => z.validator_key);
}

export function computeQuorum(n) {
  return Math.floor((2 * n) / 3) + 1;
}

// --- Ed25519 ---------------------------------------------------------------

export async function isValidEd25519(publicKey, message, signature) {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (exc) {
    return false;
  }
}

// --- the document log (RFC 9162 §2.1) --------------------------------------

export async function computeLeafHash(data) {
  return sha256(concatBytes(new Uint8Array([0]), data));
}

export async function computeNodeHash(left, right) {
  return sha256(concatBytes(new Uint8Array([1]), left, right));
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof implies for a leaf hash at index in a tree of size. */
export async function computeRootFromInclusionProof(leafHash, index, size, proof) {
  if (!(index >= 0 && index < size)) fail(`expected a leaf index in [0, ${size}), got ${index}`);
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) fail(`expected fewer proof hashes for leaf ${index} of ${size}, got ${proof.length}`);
    if (fn % 2 === 1 || fn === sn) {
      r = await computeNodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await computeNodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail(`expected more proof hashes for leaf ${index} of ${size}, got ${proof.length}`);
  return r;
}

export async function validateInclusion(leafData, index, size, proofHex, root, what) {
  const proof = proofHex.map((h, i) => hexToBytes(h, `${what} proof hash ${i}`, 32));
  const computed = await computeRootFromInclusionProof(await computeLeafHash(leafData), index, size, proof);
  if (!isEqualBytes(computed, root)) {
    fail(`${what}: expected the log root ${short(bytesToHex(root))}, got ${short(bytesToHex(computed))} from the proof`);
  }
}

// --- the state tree (DESIGN §6) --------------------------------------------

export function isBitSet(key, depth) {
  return ((key[depth >> 3] >> (7 - (depth & 7))) & 1) === 1;
}

export async function computeSmtLeafHash(key, valueHash) {
  return sha256(concatBytes(new Uint8Array([0]), key, valueHash));
}

/** The root a state proof implies when walked along key's path (siblings root side first). */
export async function computeStateRootFromProof(key, leaf, siblings) {
  let node = leaf === null ? EMPTY_HASH : await computeSmtLeafHash(leaf.key, leaf.valueHash);
  for (let depth = siblings.length - 1; depth >= 0; depth--) {
    node = isBitSet(key, depth)
      ? await computeNodeHash(siblings[depth], node)
      : await computeNodeHash(node, siblings[depth]);
  }
  return node;
}

/** Check that key holds value (canonical bytes) under root. */
export async function validateStatePresence(key, value, proof, root) {
  expectMap(proof, "state_proof", ["leaf", "siblings"]);
  if (proof.leaf === null) fail("state_proof: expected a leaf for the document, got an empty path (document absent)");
  if (!Array.isArray(proof.siblings) || proof.siblings.length > 256) fail("state_proof.siblings: expected at most 256 hashes");
  const leafKey = hexToBytes(proof.leaf.key, "state_proof.leaf.key", 32);
  const valueHash = hexToBytes(proof.leaf.value_hash, "state_proof.leaf.value_hash", 32);
  if (!isEqualBytes(leafKey, key)) fail(`state_proof: expected leaf key ${short(bytesToHex(key))}, got ${short(proof.leaf.key)}`);
  const expectedValueHash = await sha256(value);
  if (!isEqualBytes(valueHash, expectedValueHash)) {
    fail(`state_proof: expected value hash ${short(bytesToHex(expectedValueHash))}, got ${short(proof.leaf.value_hash)}`);
  }
  const siblings = proof.siblings.map((h, i) => hexToBytes(h, `state_proof.siblings[${i}]`, 32));
  const computed = await computeStateRootFromProof(key, { key: leafKey, valueHash }, siblings);
  if (!isEqualBytes(computed, root)) {
    fail(`state proof: expected the state root ${short(bytesToHex(root))}, got ${short(bytesToHex(computed))}`);
  }
}

// --- headers, votes, commit certificates (DESIGN §7) ------------------------

const HEADER_FIELDS = [
  "chain_id", "height", "round", "time_ms", "prev_hash", "proposer", "tx_count", "log_size",
  "log_root", "state_root", "validators_hash", "next_validators_hash", "last_commit_hash",
];
const HEADER_HASHES = new Set(["prev_hash", "log_root", "state_root", "validators_hash", "next_validators_hash", "last_commit_hash"]);

/** A header's canonical bytes as fields, with hashes as bytes and integers as numbers. */
export function decodeHeader(bytes) {
  const raw = expectMap(decodeCanonical(bytes, "header"), "header", HEADER_FIELDS);
  const header = {};
  for (const name of HEADER_FIELDS) {
    if (name === "chain_id") header[name] = expectStr(raw[name], "header.chain_id");
    else if (HEADER_HASHES.has(name)) header[name] = expectBin(raw[name], `header.${name}`, 32);
    else header[name] = toInt(raw[name], `header.${name}`);
  }
  return header;
}

/** The header as JSON fields (bytes as hex), as the API shows it. */
export function headerToJson(header) {
  const out = {};
  for (const name of HEADER_FIELDS) out[name] = HEADER_HASHES.has(name) ? bytesToHex(header[name]) : header[name];
  return out;
}

/** cb(header) rebuilt from its JSON fields (bytes as hex), as GET /v1/headers shows them. */
export function encodeHeaderFields(fields) {
  expectMap(fields, "header", HEADER_FIELDS);
  const header = {};
  for (const name of HEADER_FIELDS) {
    if (name === "chain_id") header[name] = expectStr(fields[name], "header.chain_id");
    else if (HEADER_HASHES.has(name)) header[name] = hexToBytes(fields[name], `header.${name}`, 32);
    else header[name] = toInt(fields[name], `header.${name}`);
  }
  return encodeCanonical(header);
}

export async function computeValidatorsHash(keysHex) {
  return sha256(encodeCanonical(keysHex.map((k, i) => hexToBytes(k, `validator ${i}`, 32))));
}

/** The bytes a validator signs for its precommit: VOTE_DOMAIN || cb(vote). */
export function computePrecommitSigningBytes(chainId, height, round, blockHash, validator) {
  const vote = { block_hash: blockHash, chain_id: chainId, height, round, type: "precommit", validator };
  return concatBytes(VOTE_DOMAIN, encodeCanonical(vote));
}

/** Raise unless commit certifies blockHash at height by a quorum of validators (hex keys). */
export async function validateCommit(commit, { chainId, validators, height, round, blockHash }) {
  expectMap(commit, "commit");
  if (commit.height !== height) fail(`commit.height: expected ${height}, got ${describe(commit.height)}`);
  if (round !== undefined && commit.round !== round) fail(`commit.round: expected ${round}, got ${describe(commit.round)}`);
  if (commit.block_hash !== bytesToHex(blockHash)) {
    fail(`commit.block_hash: expected ${short(bytesToHex(blockHash))} (the header's hash), got ${short(commit.block_hash)}`);
  }
  if (!Array.isArray(commit.signatures)) fail("commit.signatures: expected a list");
  const n = validators.length;
  let previous = -1;
  for (const entry of commit.signatures) {
    const index = entry?.validator;
    if (!Number.isInteger(index) || index < 0 || index >= n) fail(`commit: expected a validator index below ${n}, got ${describe(index)}`);
    if (index === previous) fail(`commit: validator ${index} signs twice`);
    if (index < previous) fail(`commit: expected validator indexes ascending, got ${index} after ${previous}`);
    previous = index;
  }
  const needed = computeQuorum(n);
  if (commit.signatures.length < needed) fail(`commit: expected at least ${needed} of ${n} validators, got ${commit.signatures.length}`);
  for (const entry of commit.signatures) {
    const sig = hexToBytes(entry.sig, `commit signature of validator ${entry.validator}`, 64);
    const message = computePrecommitSigningBytes(chainId, height, commit.round, blockHash, entry.validator);
    const key = hexToBytes(validators[entry.validator], `validator ${entry.validator}`, 32);
    if (!(await isValidEd25519(key, message, sig))) {
      fail(`commit: the precommit signature of validator ${entry.validator} does not verify`);
    }
  }
}

// --- transactions (DESIGN §4) ----------------------------------------------

/** Decode cb(envelope) into {tx, sig, kind, signer, body}; refuses non-canonical bytes. */
export function decodeEnvelope(bytes, what) {
  const env = expectMap(decodeCanonical(bytes, what), what, ["sig", "tx"]);
  const sig = expectBin(env.sig, `${what}.sig`, 64);
  const tx = expectMap(env.tx, `${what}.tx`, ["body", "chain_id", "kind", "nonce", "signer"]);
  const body = expectMap(tx.body, `${what}.tx.body`);
  const out = {
    tx,
    sig,
    chainId: expectStr(tx.chain_id, `${what}.tx.chain_id`),
    kind: expectStr(tx.kind, `${what}.tx.kind`),
    signer: expectBin(tx.signer, `${what}.tx.signer`, 32),
    docId: expectStr(body.doc_id, `${what}.body.doc_id`),
    docHash: bytesToHex(expectBin(body.doc_hash, `${what}.body.doc_hash`, 32)),
    reason: body.reason === undefined ? null : expectStr(body.reason, `${what}.body.reason`),
    docType: body.doc_type === undefined ? null : expectStr(body.doc_type, `${what}.body.doc_type`),
    supersedes: body.supersedes === undefined ? null : bytesToHex(expectBin(body.supersedes, `${what}.body.supersedes`, 32)),
    attachments: [],
  };
  if (![KIND_ISSUE, KIND_AMEND, KIND_REVOKE].includes(out.kind)) fail(`${what}: expected a document transaction, got ${describe(out.kind)}`);
  if (out.kind !== KIND_REVOKE) {
    if (!Array.isArray(body.attachments)) fail(`${what}.body.attachments: expected a list`);
    out.attachments = body.attachments.map((a, i) => {
      const m = expectMap(a, `${what}.attachments[${i}]`, ["media_type", "name", "sha256", "size"]);
      return {
        name: expectStr(m.name, "attachment name"),
        media_type: expectStr(m.media_type, "attachment media_type"),
        sha256: bytesToHex(expectBin(m.sha256, "attachment sha256", 32)),
        size: toInt(m.size, "attachment size"),
      };
    });
  }
  return out;
}

/** The bytes an officer signs: TX_DOMAIN || cb(tx). */
export function computeTxSigningBytes(decoded) {
  return concatBytes(TX_DOMAIN, encodeCanonical(decoded.tx));
}

export async function validateTxSignature(decoded, what) {
  if (!(await isValidEd25519(decoded.signer, computeTxSigningBytes(decoded), decoded.sig))) {
    fail(`${what}: the officer's signature does not verify`);
  }
}

// --- the bundle (DESIGN §9) ------------------------------------------------

/**
 * Verify a proof bundle against the pinned genesis and decide the verdict for a copy.
 *
 * copy: {documentHash?: hex, fileHash?: hex, document?: object, number?: string} — the
 * hashes the page computed itself from the file the trader holds (or a typed number).
 * Returns {verdict, reason, checks: [{code, ok, skipped, title, detail}], facts}.
 * The verdict rules (as ledger/proofs.py): any failed check but "integrity" -> could not be
 * verified; a copy equal to the current version (or one of its attachments) -> valid, or
 * revoked; equal to an older version -> amended (revoked when the document was revoked
 * since); equal to none, in a bundle found by the copy's own number -> tampered.
 */
export async function verifyBundle(bundle, { genesis, genesisHash }, copy = {}) {
  const checks = [];
  const s = {}; // what the checks establish, for the ones after them
  const run = async (code, title, fn, needs = []) => {
    const missing = needs.find((name) => s[name] === undefined);
    if (missing) {
      checks.push({ code, ok: false, skipped: true, title, detail: "Not checked: an earlier check failed." });
      return;
    }
    try {
      const detail = await fn();
      checks.push({ code, ok: true, skipped: false, title, detail });
    } catch (exc) {
      const detail = exc instanceof CheckFailure ? exc.message : `unexpected error: ${exc.message}`;
      checks.push({ code, ok: false, skipped: false, title, detail });
    }
  };

  await run("genesis", "Alliance genesis", () => validateGenesisRule(bundle, genesis, genesisHash, s));
  await run("validators", "Validator set", () => validateValidatorsRule(bundle, genesis, s), ["genesis"]);
  await run("header", "Block header", () => validateHeaderRule(bundle, genesis, s), ["validators"]);
  await run("commit", "Validators' signatures", () => validateCommitRule(bundle, genesis, s), ["header"]);
  await run("signature", "Officer's signature", () => validateSignatureRule(bundle, genesis, s), ["genesis"]);
  await run("inclusion", "In the ledger", () => validateInclusionRule(bundle, s), ["header", "txs"]);
  await run("issuer", "Issuing zone", () => validateIssuerRule(bundle, genesis, s), ["txs", "header"]);
  await run("history", "History", () => validateHistoryRule(bundle, s), ["txs"]);
  await run("status", "Current status", () => validateStatusRule(bundle, s), ["header", "history"]);
  await run("integrity", "Your copy", () => validateIntegrityRule(bundle, copy, s), ["state"]);

  const facts = computeFacts(bundle, genesis, s);
  // A copy that matches nothing fails "integrity" but leaves the bundle sound: tampered.
  const failed = checks.find((c) => !c.ok && !(c.code === "integrity" && s.verdict === "tampered"));
  if (failed) {
    return { verdict: "could not be verified", reason: `${failed.title}: ${failed.detail}`, checks, facts };
  }
  return { verdict: s.verdict, reason: s.verdictReason, checks, facts };
}

async function validateGenesisRule(bundle, genesis, genesisHash, s) {
  expectMap(bundle, "bundle");
  if (!BUNDLE_FORMATS.includes(bundle.format)) fail(`bundle.format: expected one of ${BUNDLE_FORMATS.join(", ")}, got ${describe(bundle.format)}`);
  const computed = await computeGenesisHash(genesis);
  if (computed !== genesisHash) fail(`expected the pinned genesis ${short(genesisHash)}, got a genesis file hashing to ${short(computed)}`);
  if (bundle.genesis_hash !== genesisHash) fail(`expected the alliance's genesis ${short(genesisHash)}, got a proof for ${short(bundle.genesis_hash)}`);
  if (bundle.chain_id !== genesis.chain_id) fail(`expected chain ${genesis.chain_id}, got ${describe(bundle.chain_id)}`);
  s.genesis = true;
  return `The proof belongs to the alliance chain ${genesis.chain_id} (genesis ${short(genesisHash)}).`;
}

/** Follow validator_history from genesis's set (DESIGN §12): each entry's header is
 * governed by the set held, certified by it, and announces the entry's set, then held. */
async function computeHeldValidators(bundle, genesis) {
  let held = getValidatorKeys(genesis);
  let lastHeight = 0;
  const sets = [{ fromHeight: 1, validators: held }];
  if (bundle.format === BUNDLE_FORMATS[0]) return { held, lastHeight, changes: 0, sets };
  const history = bundle.validator_history;
  if (!Array.isArray(history) || history.length > MAX_SET_CHANGES) fail(`validator_history: expected a list of at most ${MAX_SET_CHANGES} entries`);
  for (const [i, entry] of history.entries()) {
    const where = `validator_history[${i}]`;
    expectMap(entry, where, ["commit", "header", "validators"]);
    const bytes = hexToBytes(entry.header, `${where}.header`);
    const header = decodeHeader(bytes);
    if (header.chain_id !== genesis.chain_id) fail(`${where}.header.chain_id: expected ${genesis.chain_id}, got ${header.chain_id}`);
    if (header.height <= lastHeight) fail(`${where}.header.height: expected above ${lastHeight}, got ${header.height}`);
    if (!isEqualBytes(header.validators_hash, await computeValidatorsHash(held))) {
      fail(`${where}.header.validators_hash: expected the set held, got another: a change of the set is missing before this entry`);
    }
    await validateCommit(entry.commit, {
      chainId: genesis.chain_id, validators: held, height: header.height, round: undefined, blockHash: await sha256(bytes),
    });
    if (isEqualBytes(header.next_validators_hash, header.validators_hash)) fail(`${where}.header: expected a header announcing a new set, got one that keeps it`);
    if (!Array.isArray(entry.validators) || entry.validators.length === 0 || entry.validators.length > 1000) fail(`${where}.validators: expected a list of keys`);
    entry.validators.forEach((k, j) => hexToBytes(k, `${where}.validators[${j}]`, 32));
    if (!isEqualBytes(header.next_validators_hash, await computeValidatorsHash(entry.validators))) {
      fail(`${where}.validators: expected the set whose hash header ${header.height} announces`);
    }
    held = entry.validators;
    lastHeight = header.height;
    sets.push({ fromHeight: header.height + 1, validators: held });
  }
  return { held, lastHeight, changes: history.length, sets };
}

async function validateValidatorsRule(bundle, genesis, s) {
  const { held, lastHeight, changes, sets } = await computeHeldValidators(bundle, genesis);
  if (!Array.isArray(bundle.validators) || bundle.validators.join(",") !== held.join(",")) {
    fail(changes === 0
      ? `expected the ${held.length} validator keys of genesis, in order, got another list`
      : `expected the ${held.length} validator keys the validator history leads to, in order, got another list`);
  }
  s.validatorsHash = await computeValidatorsHash(held);
  s.validators = held;
  s.lastChangeHeight = lastHeight;
  s.validatorSets = sets;
  return changes === 0
    ? `The ${held.length} validators are the member zones named in genesis.`
    : `The ${held.length} validators are genesis's set after ${changes} change(s) of membership, each certified by the set before it.`;
}

async function validateHeaderRule(bundle, genesis, s) {
  const bytes = hexToBytes(bundle.header, "header");
  const header = decodeHeader(bytes);
  if (header.chain_id !== genesis.chain_id) fail(`header.chain_id: expected ${genesis.chain_id}, got ${header.chain_id}`);
  if (!isEqualBytes(header.validators_hash, s.validatorsHash)) fail("header.validators_hash: expected the hash of the validator set held, got another");
  if (header.height <= s.lastChangeHeight) fail(`header.height: expected above ${s.lastChangeHeight} (the last change announced), got ${header.height}`);
  if (bundle.header_fields !== undefined) {
    const shown = headerToJson(header);
    for (const [name, value] of Object.entries(bundle.header_fields)) {
      if (shown[name] !== value) fail(`header_fields.${name}: expected ${describe(shown[name])} as in the signed header, got ${describe(value)}`);
    }
  }
  s.header = header;
  s.blockHash = await sha256(bytes);
  return `Block ${header.height}, hash ${short(bytesToHex(s.blockHash))}, made ${formatTime(header.time_ms)}.`;
}

async function validateCommitRule(bundle, genesis, s) {
  await validateCommit(bundle.commit, {
    chainId: genesis.chain_id, validators: s.validators, height: s.header.height, round: s.header.round, blockHash: s.blockHash,
  });
  s.signers = bundle.commit.signatures.map((e) => e.validator);
  const n = s.validators.length;
  return `${s.signers.length} of ${n} validators signed block ${s.header.height} (at least ${computeQuorum(n)} needed).`;
}

async function validateSignatureRule(bundle, genesis, s) {
  if (!Array.isArray(bundle.history) || bundle.history.length === 0) fail("history: expected the document's transactions, got none");
  const current = decodeEnvelope(hexToBytes(bundle.tx, "tx"), "tx");
  const entries = bundle.history.map((h, i) => ({
    ...decodeEnvelope(hexToBytes(h?.tx, `history[${i}].tx`), `history[${i}].tx`),
    bytes: hexToBytes(h.tx, "tx"),
    logIndex: toInt(h.log_index, `history[${i}].log_index`),
    proof: Array.isArray(h.inclusion_proof) ? h.inclusion_proof : fail(`history[${i}].inclusion_proof: expected a list`),
  }));
  for (const [i, e] of [current, ...entries].entries()) {
    if (e.chainId !== genesis.chain_id) fail(`transaction ${i}: expected chain ${genesis.chain_id}, got ${e.chainId}`);
    await validateTxSignature(e, i === 0 ? "the current transaction" : `history[${i - 1}]`);
  }
  s.current = { ...current, bytes: hexToBytes(bundle.tx, "tx"), logIndex: toInt(bundle.log_index, "log_index") };
  s.entries = entries;
  s.txs = true;
  return entries.length === 1
    ? "The transaction is signed by the officer's key."
    : `All ${entries.length} transactions of this document are signed by officers' keys.`;
}

async function validateInclusionRule(bundle, s) {
  const { header } = s;
  if (!Array.isArray(bundle.inclusion_proof)) fail("inclusion_proof: expected a list");
  await validateInclusion(s.current.bytes, s.current.logIndex, header.log_size, bundle.inclusion_proof, header.log_root, "the current transaction");
  for (const [i, e] of s.entries.entries()) {
    await validateInclusion(e.bytes, e.logIndex, header.log_size, e.proof, header.log_root, `history[${i}]`);
  }
  return `Recorded at position ${s.current.logIndex} of the ledger's log of ${header.log_size} entries.`;
}

const ZONE_RECORD_FIELDS = ["admin_key", "country", "name", "since_height", "status", "validator_key", "zone_id"];

/** /2: the signing officer's record and its zone's, each proven against the header's state root. */
async function validateIssuerRecords(bundle, zoneId, s) {
  expectMap(bundle.issuer, "issuer", ["officer_proof", "officer_record", "zone_proof", "zone_record"]);
  const signer = bytesToHex(s.current.signer);
  const officerBytes = hexToBytes(bundle.issuer.officer_record, "issuer.officer_record");
  const zoneBytes = hexToBytes(bundle.issuer.zone_record, "issuer.zone_record");
  const officer = expectMap(decodeCanonical(officerBytes, "issuer.officer_record"), "issuer.officer_record",
    ["registered_height", "revoked_height", "zone_id"]);
  const zone = expectMap(decodeCanonical(zoneBytes, "issuer.zone_record"), "issuer.zone_record", ZONE_RECORD_FIELDS);
  const encoder = new TextEncoder();
  await validateStatePresence(await sha256(encoder.encode(`officer:${signer}`)), officerBytes, bundle.issuer.officer_proof, s.header.state_root);
  await validateStatePresence(await sha256(encoder.encode(`zone:${zoneId}`)), zoneBytes, bundle.issuer.zone_proof, s.header.state_root);
  if (officer.zone_id !== zoneId) fail(`issuer.officer_record.zone_id: expected ${zoneId} (the document's zone), got ${describe(officer.zone_id)}`);
  if (zone.zone_id !== zoneId) fail(`issuer.zone_record.zone_id: expected ${zoneId}, got ${describe(zone.zone_id)}`);
  const registered = toInt(officer.registered_height, "issuer.officer_record.registered_height");
  s.zone = { zone_id: zone.zone_id, name: expectStr(zone.name, "zone.name"), country: expectStr(zone.country, "zone.country") };
  s.zoneValidatorKey = bytesToHex(expectBin(zone.validator_key, "zone.validator_key", 32));
  s.officerInGenesis = registered === 0;
  let text = `Issued by ${zone.name} (${zone.country}); the officer's key was ${registered === 0 ? "listed for that zone in genesis" : `registered on the ledger at block ${registered}`}`;
  if (officer.revoked_height !== null) text += `, and revoked at block ${toInt(officer.revoked_height, "revoked_height")} (documents it signed before stand)`;
  if (zone.status !== "active") text += `; the zone left the alliance at block ${toInt(zone.since_height, "since_height")}`;
  return `${text}.`;
}

async function validateIssuerRule(bundle, genesis, s) {
  const zoneId = s.current.docId.split("/")[0];
  if (bundle.format !== BUNDLE_FORMATS[0]) return validateIssuerRecords(bundle, zoneId, s);
  const zone = genesis.zones.find((z) => z.zone_id === zoneId);
  if (!zone) fail(`expected the document's zone to be a member of the alliance, got ${describe(zoneId)}`);
  s.zone = zone;
  const signer = bytesToHex(s.entries[0].signer);
  s.officerInGenesis = (zone.officers ?? []).includes(signer);
  return s.officerInGenesis
    ? `Issued by ${zone.name} (${zone.country}); the officer's key is listed for that zone in genesis.`
    : `Issued by ${zone.name} (${zone.country}); the officer was registered on the ledger after genesis and the validators checked that authority.`;
}

async function validateHistoryRule(bundle, s) {
  const entries = s.entries;
  const docId = s.current.docId;
  let previous = -1;
  for (const [i, e] of entries.entries()) {
    if (e.docId !== docId) fail(`history[${i}]: expected document ${docId}, got ${e.docId}`);
    if (e.logIndex <= previous) fail(`history[${i}]: expected log order, got position ${e.logIndex} after ${previous}`);
    previous = e.logIndex;
  }
  if (entries[0].kind !== KIND_ISSUE) fail(`history[0]: expected the issue, got ${entries[0].kind}`);
  const versions = [];
  let revocation = null;
  for (const [i, e] of entries.entries()) {
    if (revocation) fail(`history[${i}]: expected nothing after the revocation, got ${e.kind}`);
    if (e.kind === KIND_ISSUE && i !== 0) fail(`history[${i}]: expected one issue, got a second`);
    if (e.kind === KIND_AMEND && e.supersedes !== versions.at(-1).docHash) {
      fail(`history[${i}]: expected the amendment to supersede version ${versions.length}, got ${short(e.supersedes)}`);
    }
    if (e.kind === KIND_REVOKE) {
      if (e.docHash !== versions.at(-1).docHash) fail(`history[${i}]: expected the revocation of the current version, got ${short(e.docHash)}`);
      revocation = e;
    } else {
      versions.push(e);
    }
  }
  const latest = versions.at(-1);
  if (latest.logIndex !== s.current.logIndex || !isEqualBytes(latest.bytes, s.current.bytes)) {
    fail("tx: expected the bundle's current transaction to be the newest version in its history, got another");
  }
  if (bundle.document_hash !== latest.docHash) fail(`document_hash: expected ${short(latest.docHash)} (the newest version), got ${short(bundle.document_hash)}`);
  s.versions = versions;
  s.revocation = revocation;
  s.docType = entries[0].docType;
  s.history = true;
  const amendments = versions.length - 1;
  return `Issued${amendments ? `, amended ${amendments} time${amendments > 1 ? "s" : ""}` : ""}${revocation ? ", then revoked" : ""}; each step follows the one before.`;
}

async function validateStatusRule(bundle, s) {
  const value = hexToBytes(bundle.state_value, "state_value");
  const m = expectMap(decodeCanonical(value, "state_value"), "state_value", ["doc_hash", "log_index", "status", "version"]);
  const state = {
    docHash: bytesToHex(expectBin(m.doc_hash, "state_value.doc_hash", 32)),
    logIndex: toInt(m.log_index, "state_value.log_index"),
    status: expectStr(m.status, "state_value.status"),
    version: toInt(m.version, "state_value.version"),
  };
  const key = await sha256(new TextEncoder().encode(s.current.docId));
  await validateStatePresence(key, value, bundle.state_proof, s.header.state_root);
  if (state.docHash !== s.versions.at(-1).docHash) fail("state: expected the newest version's hash, got another");
  if (state.logIndex !== s.current.logIndex) fail(`state.log_index: expected ${s.current.logIndex}, got ${state.logIndex}`);
  if (state.version !== s.versions.length) fail(`state.version: expected ${s.versions.length} (from the history), got ${state.version}`);
  const expectedStatus = s.revocation ? "revoked" : "active";
  if (state.status !== expectedStatus) fail(`state.status: expected ${expectedStatus} (from the history), got ${describe(state.status)}`);
  s.state = state;
  return `As of block ${s.header.height} the document is ${state.status === "active" ? "in force" : "revoked"}, version ${state.version}.`;
}

async function validateIntegrityRule(bundle, copy, s) {
  const hashes = [copy.documentHash, copy.fileHash].filter(Boolean);
  const matches = (version) => hashes.some((h) => h === version.docHash || version.attachments.some((a) => a.sha256 === h));
  const current = s.versions.at(-1);
  const revoked = s.state.status === "revoked";
  if (hashes.length === 0) {
    if (!copy.number) fail("expected a copy or a number to check, got neither");
    if (!isSameNumber(s.current.docId, copy.number)) fail(`expected a proof for number ${describe(copy.number)}, got one for ${s.current.docId}`);
    s.verdict = revoked ? "revoked" : "valid";
    s.verdictReason = `Number ${copy.number} is registered as ${s.current.docId}, version ${s.versions.length}; ${revoked ? "it has been revoked" : "it is in force"}.`;
    return `No copy to compare: this is the registered status of ${s.current.docId}.`;
  }
  const attachment = current.attachments.find((a) => hashes.includes(a.sha256));
  if (matches(current)) {
    s.verdict = revoked ? "revoked" : "valid";
    const what = attachment ? `Your file is attached to the registered current version of ${s.current.docId}` : "Your copy is exactly the registered current version";
    s.verdictReason = revoked
      ? `${what}, but the issuing zone has revoked it.`
      : `${what}, and it is in force.`;
    return attachment
      ? `Your file is the attachment "${attachment.name}" registered with the current version.`
      : "Your copy's fingerprint equals the current version's.";
  }
  const older = s.versions.findIndex((v) => matches(v));
  if (older >= 0 && revoked) {
    s.verdict = "revoked";
    s.verdictReason = `Your copy is version ${older + 1}, since replaced by version ${s.versions.length}; the issuing zone has revoked the document.`;
    return `Your copy's fingerprint equals version ${older + 1} of ${s.versions.length}.`;
  }
  if (older >= 0) {
    s.verdict = "amended";
    s.verdictReason = `Your copy is version ${older + 1}; the zone has since replaced it with version ${s.versions.length}${revoked ? ", which has been revoked" : ""}.`;
    return `Your copy's fingerprint equals version ${older + 1} of ${s.versions.length}.`;
  }
  // Matches nothing: the node found the document by the copy's own number. Make sure
  // the proof is about that number before calling the copy altered.
  const field = NUMBER_FIELDS[s.docType];
  const number = copy.document && field ? copy.document[field] : undefined;
  if (typeof number !== "string" || !isSameNumber(s.current.docId, number)) {
    fail(`expected a proof for your copy (by fingerprint or by its number), got one for ${s.current.docId}`);
  }
  s.verdict = "tampered";
  s.verdictReason = `Your copy carries number ${number}, registered as ${s.current.docId}, but its content differs from every registered version.`;
  fail(`Your copy's fingerprint matches none of the ${s.versions.length} registered version(s) of this document.`);
}

function isSameNumber(docId, number) {
  const typed = String(number).trim();
  return docId === typed || docId.slice(docId.indexOf("/") + 1) === typed;
}

function computeFacts(bundle, genesis, s) {
  if (!s.txs) return null;
  const names = new Map(genesis.zones.map((z) => [z.validator_key, z]));
  if (s.zone && s.zoneValidatorKey) names.set(s.zoneValidatorKey, s.zone);
  const held = s.validators ?? getValidatorKeys(genesis);
  const zoneOf = (i) => names.get(held[i]);
  const facts = {
    docId: s.current.docId,
    docType: s.docType ?? s.entries?.[0]?.docType ?? null,
    zone: s.zone ? { zone_id: s.zone.zone_id, name: s.zone.name, country: s.zone.country } : null,
    officerKey: bytesToHex(s.entries[0].signer),
    officerInGenesis: s.officerInGenesis ?? null,
    // The set that decided each height, from genesis through the proven changes: the
    // page checks older blocks' certificates against the set of their own height.
    validatorSets: s.validatorSets ?? [{ fromHeight: 1, validators: getValidatorKeys(genesis) }],
    header: s.header ? { height: s.header.height, time_ms: s.header.time_ms, block_hash: bytesToHex(s.blockHash) } : null,
    signers: (s.signers ?? []).map((i) => ({ index: i, zone_id: zoneOf(i)?.zone_id, name: zoneOf(i)?.name })),
    status: s.state?.status ?? null,
    version: s.state?.version ?? null,
    documentHash: bundle.document_hash,
    current: s.versions
      ? { version: s.versions.length, docHash: s.versions.at(-1).docHash, attachments: s.versions.at(-1).attachments }
      : null,
    timeline: (s.entries ?? []).map((e) => ({
      kind: e.kind,
      logIndex: e.logIndex,
      docHash: e.docHash,
      reason: e.reason,
      officerKey: bytesToHex(e.signer),
      attachments: e.attachments,
    })),
  };
  return facts;
}

/** The validator set (hex keys) that decided ``height``, from ``sets`` oldest first. */
export function getValidatorsAt(sets, height) {
  let chosen = sets[0].validators;
  for (const set of sets) if (set.fromHeight <= height) chosen = set.validators;
  return chosen;
}

export function formatTime(ms) {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}
