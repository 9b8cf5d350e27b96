// The Apeiro console: polls the JSON API and redraws in place (no page reload).
"use strict";
const POLL_MS = 1000;
const params = new URLSearchParams(location.search);
let config = null;
let identity = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function banner(message) {
  const b = document.getElementById("banner");
  b.hidden = !message;
  b.textContent = message || "";
}

function token() { return sessionStorage.getItem("apeiro-console-token"); }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  return { ok: response.ok, status: response.status, body };
}

async function whoami() {
  const r = await api("api/whoami");
  identity = r.ok ? r.body.identity : null;
  document.getElementById("who").textContent = identity ? "signed in as " + identity : "not signed in (actions ask for a token)";
}

function took(s) {
  if (!s.started_at || !s.finished_at) return "";
  return ((new Date(s.finished_at) - new Date(s.started_at)) / 1000).toFixed(1) + "s";
}

// --- runs page ------------------------------------------------------------------------------

async function pollRuns() {
  const q = new URLSearchParams();
  for (const f of ["pipeline", "site", "state"]) if (params.get(f)) q.set(f, params.get(f));
  const r = await api("api/runs?" + q);
  if (!r.ok) { banner(r.body.error || ("error " + r.status)); return; }
  banner("");
  const tbody = document.querySelector("#runs tbody");
  tbody.replaceChildren(...r.body.runs.map((run) => {
    const took = run.started_at && run.closed_at ? ((new Date(run.closed_at) - new Date(run.started_at)) / 1000).toFixed(1) + "s" : "";
    const ui = `${config.ui}/namespaces/${config.namespace}/workflows/${encodeURIComponent(run.workflow_id)}`;
    return el("tr", { "data-state": run.state, id: "run-" + run.workflow_id },
      el("td", {}, el("a", { href: "run?id=" + encodeURIComponent(run.workflow_id), text: run.workflow_id })),
      el("td", { text: run.pipeline || "" }), el("td", { text: run.site || "" }),
      el("td", {}, el("span", { class: "state", text: run.state })),
      el("td", { text: run.started_at ? new Date(run.started_at).toLocaleString() : "" }),
      el("td", { text: took }),
      el("td", {}, el("a", { href: ui, target: "_blank", rel: "noopener", text: "Temporal UI" })));
  }));
}

function initRuns() {
  const select = document.getElementById("f-state");
  for (const s of config.states) select.append(el("option", { value: s, text: s }));
  for (const f of ["pipeline", "site", "state"]) document.getElementById("f-" + f).value = params.get(f) || "";
  pollRuns();
  setInterval(pollRuns, POLL_MS * 3);
}

// --- run page -------------------------------------------------------------------------------

const runId = params.get("id");
let lastJson = "";
let lastShape = "";

function stepActions(s) {
  const buttons = [];
  if (s.state === "waiting" && s.uses === "core.approval") buttons.push("approve", "reject");
  if (s.state === "failed") buttons.push("retry", "skip");
  if (s.state === "pending") buttons.push("skip");
  return buttons.map((a) => el("button", { "data-action": a, "data-step": s.name, id: `act-${a}-${s.name}`, text: a }));
}

function detail(s, view) {
  const cell = el("td");
  if (s.error) cell.append(el("div", { class: "error", text: s.error }));
  else if (s.message) cell.append(el("div", { text: s.message }));
  if (s.votes && s.votes.length) {
    cell.append(el("div", { class: "votes", text: "votes: " + s.votes.map((v) => `${v.approver} ${v.approve ? "✔" : "✘"}${v.comment ? " (" + v.comment + ")" : ""}`).join(", ") }));
  }
  if (s.items_total !== null && s.items_total !== undefined) {
    const d = el("details", { class: "items" },
      el("summary", { text: `forEach: ${s.items_done}/${s.items_total} done` + (s.items_failed ? `, ${s.items_failed} failed` : "") }));
    for (const child of s.child_workflow_ids || []) {
      d.append(el("div", {}, el("a", { href: `${config.ui}/namespaces/${config.namespace}/workflows/${encodeURIComponent(child)}`, target: "_blank", rel: "noopener", text: child })));
    }
    cell.append(d);
  } else if (s.child_workflow_ids && s.child_workflow_ids.length) {
    for (const child of s.child_workflow_ids) {
      cell.append(el("div", {}, el("a", { href: `${config.ui}/namespaces/${config.namespace}/workflows/${encodeURIComponent(child)}`, target: "_blank", rel: "noopener", text: "child " + child })));
    }
  }
  for (const p of (view.promotions || {})[s.name] || []) {
    const t = el("table", { class: "promotion", id: `promotion-${s.name}` }, el("tr", {}, el("th", { text: "ring" }), el("th", { text: "state" }), el("th", { text: "gate" }), el("th", { text: "outcome" }), el("th", { text: "why pending" }), el("th", { text: "" })));
    for (const ring of p.rings) {
      const gates = ring.gates && ring.gates.length ? ring.gates : [null];
      gates.forEach((g, i) => {
        const key = g ? `${ring.ring}/${g.name}` : ring.ring;
        const votes = (p.waiting_approvals || []).includes(key)
          ? ["approve", "reject"].map((a) => el("button", { "data-action": a, "data-step": s.name, "data-gate": key, id: `act-${a}-${key}`, text: a }))
          : [];
        t.append(el("tr", { id: `gate-${key}`, "data-state": g ? (g.outcome || g.state).toLowerCase() : ring.state.toLowerCase() },
          el("td", { text: i === 0 ? ring.ring : "" }), el("td", { text: i === 0 ? ring.state : "" }),
          el("td", { text: g ? `${g.name} (${g.phase})` : "" }), el("td", { text: g ? (g.outcome || g.state) : "" }),
          el("td", { class: "why", text: g ? g.reason : (ring.pending || ring.reason || "") }), el("td", {}, ...votes)));
      });
    }
    cell.append(el("div", { text: `promotion ${p.pipeline} ${p.version}: ${p.state}` + (p.paused ? " (paused)" : "") }), t);
  }
  for (const r of s.repairs || []) {
    cell.append(el("div", { class: "audit", text: `${r.action} by ${r.by} at ${new Date(r.at).toLocaleString()}: ${r.reason}` }));
  }
  return cell;
}

async function refreshGraph() {
  const r = await api("api/graph?id=" + encodeURIComponent(runId));
  if (r.ok) document.getElementById("graph").innerHTML = r.body;
}

async function pollRun() {
  let r;
  try { r = await api("api/run?id=" + encodeURIComponent(runId)); } catch (e) { banner("console unreachable: " + e); return; }
  if (!r.ok) { banner(r.body.error || ("error " + r.status)); return; }
  showRun(r.body);
}

function showRun(view) {
  banner(view.status_error || "");
  const json = JSON.stringify(view);
  if (json === lastJson) return;
  lastJson = json;
  const st = view.status;
  document.getElementById("run-state").textContent = st ? `${view.execution} (pipeline ${st.pipeline}: ${st.state})` : view.execution;
  document.getElementById("run-state").className = "state " + view.execution;
  document.body.dataset.runState = view.execution;
  document.getElementById("ui-link").href = view.ui;
  showOrigin(view.origin);
  const running = view.execution === "running";
  document.getElementById("running-actions").hidden = !running;
  document.getElementById("finished-actions").hidden = running || !st;
  if (!st) return;
  const chooser = document.getElementById("rerun-step");
  const names = st.steps.map((s) => s.name);
  if ([...chooser.options].map((o) => o.value).join("|") !== names.join("|")) {
    const firstBad = st.steps.find((s) => s.state !== "succeeded" && s.state !== "skipped");
    chooser.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    if (firstBad) chooser.value = firstBad.name;  // the usual choice: where it went wrong
  }
  const tbody = document.querySelector("#steps tbody");
  tbody.replaceChildren(...st.steps.map((s) => el("tr", { id: "row-" + s.name, "data-state": s.state },
    el("td", { text: s.name }), el("td", { text: s.uses }),
    el("td", {}, el("span", { class: "state", text: s.state })),
    el("td", { text: took(s) }), detail(s, view), el("td", {}, ...stepActions(s)))));
  const shape = st.steps.map((s) => `${s.name}:${s.state}:${s.items_done}:${s.error || ""}`).join("|");
  if (shape !== lastShape) { lastShape = shape; refreshGraph(); }
}

function showOrigin(o) {
  const p = document.getElementById("origin");
  if (!o) { p.replaceChildren(); return; }
  const parts = [];
  if (o.rerun_of) {
    parts.push("re-run of ", el("a", { href: "run?id=" + encodeURIComponent(o.rerun_of), id: "rerun-of", text: o.rerun_of }),
      ` from step ${o.from_step || "?"}`);
    if (o.requested_by) parts.push(` by ${o.requested_by}`);
    if (o.reason) parts.push(`: ${o.reason}`);
  } else if (o.requested_by) {
    parts.push(`started by ${o.requested_by}`);
  }
  p.replaceChildren(...parts);
}

let pending = null;

function ask(action, step, gate) {
  if (action === "rerun") step = document.getElementById("rerun-step").value;
  pending = { action, step, gate };
  document.getElementById("act-title").textContent =
    action === "rerun" ? `re-run from step ${step} (a new run)` : gate ? `${action} gate ${gate} of step ${step}`
      : step ? `${action} step ${step}` : `${action} run`;
  document.getElementById("act-who").textContent = identity || "? (give your console token)";
  document.getElementById("token-label").hidden = !!identity;
  document.getElementById("outputs-label").hidden = action !== "skip";
  document.getElementById("act-error").textContent = "";
  document.getElementById("act-dialog").showModal();
}

async function confirmAction(event) {
  event.preventDefault();
  const t = document.getElementById("act-token").value.trim();
  if (!identity && t) { sessionStorage.setItem("apeiro-console-token", t); await whoami(); }
  if (!identity) { document.getElementById("act-error").textContent = "who is acting? sign in through the proxy or give a console token"; return; }
  const body = { step: pending.step, gate: pending.gate, reason: document.getElementById("act-reason").value };
  const raw = document.getElementById("act-outputs").value.trim();
  if (pending.action === "skip" && raw) {
    try { body.outputs = JSON.parse(raw); } catch (e) { document.getElementById("act-error").textContent = "outputs are not JSON: " + e; return; }
  }
  const r = await api(`api/action?id=${encodeURIComponent(runId)}&action=${pending.action}`,
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!r.ok) { document.getElementById("act-error").textContent = "refused: " + (r.body.error || r.status); return; }
  document.getElementById("act-dialog").close();
  document.getElementById("act-reason").value = "";
  if (pending.action === "rerun" && r.body.result) {  // the new run has its own page
    location.href = "run?id=" + encodeURIComponent(r.body.result.workflow_id);
    return;
  }
  lastJson = "";
  pollRun();
}

function initRun() {
  document.getElementById("run-id").textContent = runId;
  document.title = "Apeiro: " + runId;
  document.body.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-action]");
    if (b) ask(b.dataset.action, b.dataset.step || null, b.dataset.gate || null);
  });
  document.getElementById("act-ok").addEventListener("click", confirmAction);
  document.getElementById("act-cancel").addEventListener("click", () => document.getElementById("act-dialog").close());
  pollRun();
  if (!window.EventSource) { setInterval(pollRun, POLL_MS); return; }
  // Server-sent events: the view each time it changes; the browser reconnects by itself after errors.
  const stream = new EventSource("api/run/stream?id=" + encodeURIComponent(runId));
  window.apeiroStream = stream;  // the browser test checks the page follows the stream
  stream.onmessage = (e) => showRun(JSON.parse(e.data));
  stream.addEventListener("problem", (e) => banner(JSON.parse(e.data).error || "problem"));
  stream.addEventListener("end", () => stream.close());
  stream.onerror = () => { if (stream.readyState !== EventSource.CLOSED) banner("console unreachable: reconnecting…"); };
}

(async () => {
  window.apeiroLoadedAt = Date.now();  // the browser test checks the page was never reloaded
  try { config = (await api("api/config")).body; } catch (e) { banner("console unreachable: " + e); }
  await whoami();
  if (document.body.dataset.page === "runs") initRuns(); else initRun();
})();
