// The verifier page: finds its node and genesis, reads the dropped file, asks the node for
// the proof bundle, verifies it locally (verify.js) and shows the verdict; then the public
// explorer. The node's own opinion (its "verdict" and "checks") is never shown as ours.

import {
  bytesToHex, computeDocumentHash, computeFileHash, computeGenesisHash, computeQuorum,
  decodeHeader, encodeHeaderFields, formatTime, getValidatorsAt, hexToBytes, sha256, validateCommit, verifyBundle,
} from "./verify.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// Where the node is and which genesis is pinned. `node` "" means the page's own origin.
const setup = { node: "", genesis: null, genesisHash: null, error: null };

const VERDICT_WORDS = {
  valid: ["Valid", "genuine and in force"],
  amended: ["Amended", "genuine, but an older version"],
  revoked: ["Revoked", "genuine, but no longer stands"],
  tampered: ["Tampered", "this copy was altered"],
  unknown: ["Unknown", "not registered on the ledger"],
  "could not be verified": ["Could not be verified", "no trustworthy answer"],
};
const KIND_WORDS = { "doc.issue": "Issued", "doc.amend": "Amended", "doc.revoke": "Revoked" };
const FETCH_TIMEOUT_MS = 15000;

// --- the node and the genesis ------------------------------------------------

function nodeUrl(path) {
  return (setup.node || "").replace(/\/+$/, "") + path;
}

async function fetchJson(url, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  try {
    const response = await fetch(url, { ...options, signal: controller.signal, cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (exc) {
      throw new Error(`the node answered ${response.status} with something other than JSON`);
    }
    if (!response.ok) throw new Error(`the node answered ${response.status}: ${body?.detail ?? body?.title ?? "error"}`);
    return body;
  } catch (exc) {
    if (exc.name === "AbortError") throw new Error(`the node did not answer within ${FETCH_TIMEOUT_MS / 1000} s`);
    if (exc instanceof TypeError) throw new Error(`the node could not be reached (${exc.message})`);
    throw exc;
  } finally {
    clearTimeout(timer);
  }
}

/** Pin a genesis: the pinned hash must be the genesis's own H(JCS(genesis)). */
async function pinGenesis(genesis, pinnedHash, source) {
  const computed = await computeGenesisHash(genesis);
  if (pinnedHash && computed !== pinnedHash) {
    throw new Error(`the genesis from ${source} hashes to ${computed}, not the pinned ${pinnedHash}`);
  }
  setup.genesis = genesis;
  setup.genesisHash = computed;
  setup.error = null;
}

async function loadConfig() {
  const pinned = params.get("genesis_hash");
  setup.node = params.get("node") ?? "";
  const candidates = setup.node ? [nodeUrl("/config.json")] : [new URL("config.json", location.href).href];
  for (const url of candidates) {
    try {
      const config = await fetchJson(url);
      if (!setup.node && config.node) setup.node = config.node;
      await pinGenesis(config.genesis, pinned ?? config.genesis_hash, "the page's configuration");
      return;
    } catch (exc) {
      setup.error = `No configuration could be loaded (${exc.message}). Enter a node's address or load the genesis file below.`;
    }
  }
}

function showSetup() {
  const status = $("config-status");
  if (setup.genesisHash) {
    status.textContent = `Chain ${setup.genesis.chain_id}, genesis fingerprint ${setup.genesisHash}. Node: ${setup.node || location.origin}.`;
  } else {
    status.textContent = setup.error ?? "No genesis is pinned yet.";
    $("settings").open = true;
  }
  $("node-url").value = setup.node || (location.protocol.startsWith("http") ? location.origin : "");
}

// --- reading what the trader gives us ----------------------------------------

/** The copy's own fingerprints: the file's bytes, and for JSON its RFC 8785 form. */
async function readCopy(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const copy = { name: file.name, fileHash: await computeFileHash(bytes), documentHash: null, document: null };
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    const value = JSON.parse(text);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      copy.document = value;
      copy.documentHash = await computeDocumentHash(value);
    }
  } catch (exc) {
    // Not JSON: the file is checked as an attachment, by its bytes.
  }
  return copy;
}

/** Ask the node for the bundle: by the document (so an altered copy is found by its number), or by hash. */
async function askNode(copy) {
  let body;
  if (copy.number) body = { number: copy.number };
  else if (copy.document) body = { document: copy.document };
  else body = { hash: copy.fileHash };
  return fetchJson(nodeUrl("/v1/verify"), {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
}

async function check(copy) {
  showBusy(copy);
  if (!setup.genesisHash) {
    showResult({ verdict: "could not be verified", reason: setup.error ?? "No alliance genesis is pinned.", checks: [], facts: null }, copy);
    return;
  }
  let answer;
  try {
    answer = await askNode(copy);
  } catch (exc) {
    showResult({ verdict: "could not be verified", reason: `The ledger could not be asked: ${exc.message}.`, checks: [], facts: null }, copy);
    return;
  }
  if (answer === null || typeof answer !== "object" || !("bundle" in answer)) {
    showResult({ verdict: "could not be verified", reason: "The node's answer is not a verification result.", checks: [], facts: null }, copy);
    return;
  }
  if (answer.bundle === null) {
    if (answer.verdict === "unknown") {
      const what = copy.number ? `No document numbered ${copy.number} is registered` : "Nothing registered on the ledger has this file's fingerprint or its number";
      showResult({ verdict: "unknown", reason: `${what}. Ask the issuer, or check that you dropped the right file.`, checks: [], facts: null }, copy);
    } else {
      showResult({ verdict: "could not be verified", reason: `The node says "${answer.verdict}" but sent no proof to check.`, checks: [], facts: null }, copy);
    }
    return;
  }
  const result = await verifyBundle(answer.bundle, { genesis: setup.genesis, genesisHash: setup.genesisHash }, copy);
  showResult(result, copy);
  if (result.facts) addCommitTimes(result.facts).catch((exc) => console.warn("commit times:", exc.message));
}

// --- showing the verdict ------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function showBusy(copy) {
  const result = $("result");
  result.hidden = false;
  result.dataset.verdict = "";
  result.setAttribute("aria-busy", "true");
  result.replaceChildren(el("p", { class: "busy", text: `Checking ${copy.number ? `number ${copy.number}` : copy.name}…` }));
}

function showResult(result, copy) {
  const box = $("result");
  const [word, gloss] = VERDICT_WORDS[result.verdict];
  box.dataset.verdict = result.verdict;
  box.removeAttribute("aria-busy");
  const children = [
    el("p", { class: "subject muted", text: copy.number ? `Certificate number ${copy.number}` : `Your file: ${copy.name}` }),
    el("p", { class: "verdict", id: "verdict", text: word }),
    el("p", { class: "gloss", text: gloss }),
    el("p", { class: "reason", id: "reason", text: result.reason }),
  ];
  if (result.checks.length) {
    const list = el("ul", { class: "checks", id: "checks" });
    for (const c of result.checks) {
      const mark = c.ok ? "✓" : c.skipped ? "–" : "✗";
      const state = c.ok ? "pass" : c.skipped ? "skipped" : "fail";
      list.append(el("li", { class: state, "data-code": c.code },
        el("span", { class: "mark", "aria-hidden": "true", text: mark }),
        el("span", { class: "visually-hidden", text: c.ok ? "passed: " : c.skipped ? "not checked: " : "failed: " }),
        el("strong", { text: c.title }), " ", el("span", { text: c.detail })));
    }
    children.push(el("h3", { text: "Checks" }), list);
  }
  if (result.facts && result.verdict !== "could not be verified") children.push(...renderFacts(result.facts, result.verdict));
  if (copy.fileHash || copy.documentHash) {
    children.push(el("p", { class: "fingerprint muted" },
      `Your file's fingerprint (SHA-256): ${copy.documentHash ?? copy.fileHash}` + (copy.documentHash ? " (of its RFC 8785 form)" : "")));
  }
  box.replaceChildren(...children);
  box.hidden = false;
}

function renderFacts(facts, verdict) {
  const out = [el("h3", { text: "Facts" })];
  const dl = el("dl", { class: "facts", id: "facts" });
  const add = (term, value) => dl.append(el("dt", { text: term }), el("dd", {}, value));
  add("Document", `${facts.docId}${facts.docType ? ` (${facts.docType.replaceAll("_", " ")})` : ""}`);
  if (facts.zone) add("Issuing zone", `${facts.zone.name} — ${facts.zone.zone_id}, ${facts.zone.country}`);
  add("Officer key", el("code", { text: facts.officerKey }));
  if (facts.officerInGenesis !== null) {
    dl.lastChild.append(el("span", { class: "muted", text: facts.officerInGenesis ? " (listed in genesis)" : " (registered on the ledger)" }));
  }
  if (facts.header) {
    add("Checked against", `block ${facts.header.height}, made ${formatTime(facts.header.time_ms)}`);
    add("Signed by validators", facts.signers.map((s) => s.name ?? s.zone_id ?? `#${s.index}`).join(", "));
  }
  if (facts.status) add("Status now", `${facts.status === "active" ? "in force" : "revoked"}, version ${facts.version}`);
  out.push(dl);
  if (verdict === "amended" && facts.current) {
    const cur = facts.current;
    const amendment = facts.timeline.filter((t) => t.kind === "doc.amend").at(-1);
    out.push(el("div", { class: "current", id: "current-version" },
      el("h3", { text: "The current version" }),
      el("p", { text: `Version ${cur.version}${facts.status === "revoked" ? " (revoked)" : ""}, fingerprint ${cur.docHash}.` }),
      amendment?.reason ? el("p", { text: `Last amended because: ${amendment.reason}.` }) : null,
      cur.attachments.length ? el("p", { text: `Attached files: ${cur.attachments.map((a) => a.name).join(", ")}.` }) : null,
      el("p", { class: "muted", text: "Ask the issuing zone or your counterpart for the current version." })));
  }
  const timeline = el("ol", { class: "timeline", id: "timeline" });
  for (const t of facts.timeline) {
    const li = el("li", { "data-kind": t.kind, "data-log-index": String(t.logIndex) },
      el("strong", { text: KIND_WORDS[t.kind] ?? t.kind }),
      el("span", { class: "when muted", text: "" }),
      t.reason ? el("span", { text: ` — reason: ${t.reason}` }) : null);
    timeline.append(li);
  }
  out.push(el("h3", { text: "Timeline" }), timeline);
  return out;
}

/**
 * Date each timeline step: find the block whose log range holds its log index (binary
 * search over headers) and check that block's commit certificate before showing its time.
 */
async function addCommitTimes(facts) {
  const top = facts.header?.height;
  if (!top) return;
  const cache = new Map();
  const getHeader = async (h) => {
    if (!cache.has(h)) cache.set(h, fetchJson(nodeUrl(`/v1/headers/${h}`)).then(async (r) => {
      const bytes = r.header.bytes ? hexToBytes(r.header.bytes) : encodeHeaderFields(r.header);
      const header = decodeHeader(bytes);
      const blockHash = await sha256(bytes);
      await validateCommit(r.commit, {
        chainId: setup.genesis.chain_id, validators: getValidatorsAt(facts.validatorSets, header.height),
        height: header.height, round: header.round, blockHash,
      });
      return header;
    }));
    return cache.get(h);
  };
  for (const item of document.querySelectorAll("#timeline li")) {
    const index = Number(item.dataset.logIndex);
    let lo = 1;
    let hi = top;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await getHeader(mid)).log_size > index) hi = mid;
      else lo = mid + 1;
    }
    const header = await getHeader(lo);
    item.querySelector(".when").textContent = ` in block ${header.height}, ${formatTime(header.time_ms)}`;
  }
}

// --- the explorer ----------------------------------------------------------------

async function loadExplorer() {
  const status = $("explorer-status");
  try {
    const [chain, validators] = await Promise.all([fetchJson(nodeUrl("/v1/status")), fetchJson(nodeUrl("/v1/validators"))]);
    const newest = [];
    const oldest = Math.max(1, chain.height - 59);
    const fetched = await Promise.all(
      Array.from({ length: chain.height - oldest + 1 }, (_, i) => fetchJson(nodeUrl(`/v1/headers/${chain.height - i}`)).catch(() => null)),
    );
    for (const r of fetched) if (r) newest.push(r);
    renderChain(chain);
    renderChart(newest, chain.time_ms);
    renderValidators(validators, chain.height);
    renderZones(chain.zones ?? []);
    loadProposals();
    renderHeaders(newest.slice(0, 10), validators);
    status.textContent = `Live from ${setup.node || location.origin}; updated ${new Date().toLocaleTimeString()}.`;
    $("explorer-body").hidden = false;
  } catch (exc) {
    status.textContent = `The network could not be read: ${exc.message}.`;
  }
}

function renderChain(chain) {
  const dl = $("chain-stats");
  dl.replaceChildren();
  const add = (term, value) => dl.append(el("div", {}, el("dt", { text: term }), el("dd", { text: value })));
  add("Chain", chain.chain_id);
  add("Height", String(chain.height));
  add("Last block", chain.time_ms ? formatTime(chain.time_ms) : "none yet");
  add("Validators", String(Array.isArray(chain.validators) ? chain.validators.length : chain.validators));
}

function renderChart(headers, nowMs) {
  const hour = headers.filter((r) => r.header.time_ms >= nowMs - 3600_000).reverse();
  const box = $("chart");
  if (!hour.length) {
    box.replaceChildren(el("p", { class: "muted", text: "No blocks in the last hour." }));
    return;
  }
  const width = 600;
  const height = 80;
  const pad = 16;
  const max = Math.max(1, ...hour.map((r) => r.header.tx_count));
  const step = (width - 2 * pad) / hour.length;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 2 * pad}`);
  svg.setAttribute("role", "img");
  const total = hour.reduce((n, r) => n + r.header.tx_count, 0);
  svg.setAttribute("aria-label", `${total} documents and transactions in ${hour.length} blocks over the last hour; at most ${max} in one block.`);
  hour.forEach((r, i) => {
    const h = (r.header.tx_count / max) * height;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(pad + i * step + 1));
    rect.setAttribute("y", String(pad + height - h));
    rect.setAttribute("width", String(Math.max(1, step - 2)));
    rect.setAttribute("height", String(h));
    const title = document.createElementNS(ns, "title");
    title.textContent = `block ${r.header.height}: ${r.header.tx_count}`;
    rect.append(title);
    svg.append(rect);
  });
  const axis = document.createElementNS(ns, "line");
  for (const [k, v] of Object.entries({ x1: pad, x2: width - pad, y1: pad + height, y2: pad + height })) axis.setAttribute(k, String(v));
  svg.append(axis);
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", String(pad));
  label.setAttribute("y", String(pad - 6));
  label.textContent = `${hour.length} blocks; at most ${max} per block`;
  svg.append(label);
  box.replaceChildren(svg);
}

function renderValidators(validators, height) {
  const body = $("validators").querySelector("tbody");
  body.replaceChildren(...validators.map((v) => el("tr", {},
    el("td", { text: String(v.index) }),
    el("td", { text: `${v.name} (${v.zone_id})` }),
    el("td", {}, el("code", { text: `${v.key.slice(0, 16)}…`, title: v.key })),
    el("td", { text: v.last_signed_height ? `${v.last_signed_height}${height - v.last_signed_height > 5 ? " (behind)" : ""}` : "not yet" }))));
}

function renderZones(zones) {
  // Members in order of admission, with when they joined (0: genesis) or left (DESIGN §12).
  const since = (z) => {
    if (z.status === "removed") return `; left the alliance at block ${z.since_height}`;
    return z.since_height ? `; member since block ${z.since_height}` : "; founding member";
  };
  $("zones").replaceChildren(...zones.map((z) => el("li", {
    class: z.status === "removed" ? "removed" : "",
    text: `${z.name} — ${z.zone_id}, ${z.country}; ${Array.isArray(z.officers) ? z.officers.length : z.officers} officer key(s)${z.since_height === undefined ? "" : since(z)}`,
  })));
}

async function loadProposals() {
  // Open proposals of the alliance's admins (GET /v1/governance/proposals).
  const list = $("proposals");
  try {
    const answer = await fetchJson(nodeUrl("/v1/governance/proposals"));
    const items = (Array.isArray(answer) ? answer : answer.proposals ?? []).filter((p) => p.status === "open");
    list.replaceChildren(...(items.length ? items.map((p) => el("li", {
      text: `${p.action?.type ?? "?"}${p.action?.zone_id ? ` ${p.action.zone_id}` : ""}: ${p.approvals?.length ?? 0} of ${p.approvals_needed ?? "?"} approvals, open until block ${p.expires_height}`,
    })) : [el("li", { class: "muted", text: "No open proposal." })]));
  } catch (exc) {
    list.replaceChildren(el("li", { class: "muted", text: `Proposals could not be read: ${exc.message}.` }));
  }
}

function renderHeaders(headers, validators) {
  const names = new Map(validators.map((v) => [v.index, v.zone_id]));
  const body = $("headers").querySelector("tbody");
  body.replaceChildren(...headers.map((r) => el("tr", {},
    el("td", { text: String(r.header.height) }),
    el("td", { text: formatTime(r.header.time_ms).replace(" UTC", "") }),
    el("td", { text: String(r.header.tx_count) }),
    el("td", {}, el("code", { text: `${r.block_hash.slice(0, 12)}…`, title: r.block_hash })),
    el("td", { text: (r.commit?.signatures ?? []).map((s) => names.get(s.validator) ?? `#${s.validator}`).join(", ") || "pending" }))));
}

// --- wiring ------------------------------------------------------------------------

function wire() {
  const input = $("file");
  const zone = $("dropzone");
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (file) await check(await readCopy(file));
    input.value = "";
  });
  // Enter opens the file picker too (Space does natively), so the drop zone works from the keyboard.
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      input.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (file) await check(await readCopy(file));
  });
  $("number-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const number = $("number").value.trim();
    if (number) await check({ number, name: number });
  });
  $("refresh").addEventListener("click", loadExplorer);
  $("node-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const url = $("node-url").value.trim();
    setup.node = url;
    if (!setup.genesisHash) {
      try {
        const config = await fetchJson(nodeUrl("/config.json"));
        await pinGenesis(config.genesis, params.get("genesis_hash") ?? config.genesis_hash, url);
      } catch (exc) {
        setup.error = `That node's configuration could not be used (${exc.message}).`;
      }
    }
    showSetup();
    loadExplorer();
  });
  $("genesis-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const genesis = JSON.parse(await file.text());
      await pinGenesis(genesis, params.get("genesis_hash"), file.name);
    } catch (exc) {
      setup.genesis = null;
      setup.genesisHash = null;
      setup.error = `The genesis file could not be used (${exc.message}).`;
    }
    showSetup();
  });
}

async function main() {
  wire();
  await loadConfig();
  showSetup();
  document.body.dataset.ready = "true";
  await loadExplorer();
  setInterval(() => {
    if (document.visibilityState === "visible") loadExplorer();
  }, 15000);
}

main();

// For tests and for the curious: the verifier itself, on the page.
window.zoneledger = { verifyBundle, computeDocumentHash, computeFileHash, computeGenesisHash, computeQuorum, bytesToHex, setup };
