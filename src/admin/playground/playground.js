// The policy playground: calls the admin API (the same code as `gerbang policy explain|diff|activate`)
// and renders every value as text. No innerHTML anywhere: a path, an attribute or a rule description
// that contains markup is shown as the characters it is.
const base = location.pathname.replace(/\/playground\/?$/, "");
const $ = (id) => document.getElementById(id);

/** An element with text and child elements; strings become text nodes, never markup. */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const show = (value) => (value === undefined ? "(missing)" : JSON.stringify(value));

async function api(path, body) {
  const response = await fetch(`${base}/api/policy/${path}`, {
    method: body === undefined ? "GET" : "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status} ${json.error?.code ?? ""}: ${json.error?.message ?? "request failed"}${json.error?.reason ? ` (${json.error.reason})` : ""}`);
  return json;
}

function fail(target, error) {
  target.replaceChildren(el("p", "error", error instanceof Error ? error.message : String(error)));
}

function parseObject(text, what) {
  if (text.trim() === "") return undefined;
  const value = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${what} must be a JSON object`);
  return value;
}

async function refreshStatus() {
  try {
    const status = await api("status");
    const active = status.active;
    const serving = status.instances.filter((i) => i.state === "serving" && i.version === active?.version).length;
    $("status").textContent = active === null
      ? "No version is recorded as active yet."
      : `Active: ${active.version} (digest ${active.digest.slice(0, 12)}), since ${active.activatedAt} by ${active.activatedBy}; ${serving} of ${status.instances.length} instances serve it.`;
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function loadVersions() {
  const { versions } = await api("versions");
  for (const id of ["explain-version", "diff-from", "diff-to", "activate-version"]) {
    const select = $(id);
    select.replaceChildren(...versions.map((v) => {
      const option = el("option", null, `${v.name}${v.active ? " (active)" : ""}${v.valid ? "" : " (not valid)"}`);
      option.value = v.name;
      option.selected = id === "diff-to" ? false : v.active;
      return option;
    }));
  }
  const to = $("diff-to");
  const other = versions.find((v) => !v.active);
  if (other) to.value = other.name;
}

function renderExplanation(e) {
  const o = e.outcome;
  const decision = el("p", o.status === 200 ? "allow" : "deny", `${o.status === 200 ? "Allowed (forwarded)" : "Denied"}: ${o.status} ${o.reason}`, o.ruleId ? el("span", "decided", ` by rule ${o.ruleId}`) : null);
  const parts = [decision, el("p", null, `Version ${e.version}. ${e.request.method} ${e.request.path} `, e.endpoint ? `→ endpoint ${e.endpoint.id}: ${e.endpoint.action} ${e.endpoint.subject} (resource from ${e.endpoint.resourceFrom})` : "→ no endpoint matches")];
  if (e.blockedFields.length > 0) parts.push(el("p", "deny", `Blocked fields: ${e.blockedFields.join(", ")}`));
  const rules = el("ul", "rules");
  for (const r of [...e.rules, ...(e.scopeRules ?? [])]) {
    const verdict = r.decided ? "decided" : !r.conditionsMet ? "conditions not met" : r.uncoveredFields.length > 0 ? `does not cover ${r.uncoveredFields.join(", ")}` : "matches";
    const item = el("li", r.decided ? "decided" : null, `${r.id} [${r.role}] ${r.effect}${r.fields ? ` fields ${r.fields.join(", ")}` : ""}: ${verdict}`);
    if (r.description) item.append(el("div", null, r.description));
    for (const c of r.conditions) item.append(el("div", c.met ? "allow" : "deny", `${c.met ? "ok" : "FAIL"} ${c.attribute} ${c.operator} ${show(c.written)} = ${show(c.expected)}; resource has ${show(c.actual)}`));
    rules.append(item);
  }
  parts.push(el("h3", null, "Rules weighed (first that matches decides)"), rules.children.length > 0 ? rules : el("p", null, "none"));
  if (e.otherRules.length > 0) parts.push(el("p", null, `Other rules of these roles (do not apply): ${e.otherRules.join(", ")}`));
  $("explain-result").replaceChildren(...parts);
}

$("explain-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const asUser = document.querySelector("input[name=as]:checked")?.value === "user";
    const scopes = $("explain-scopes").value.split(",").map((s) => s.trim()).filter(Boolean);
    const body = {
      method: $("explain-method").value,
      path: $("explain-path").value,
      version: $("explain-version").value || undefined,
      ...(asUser
        ? { user: $("explain-user").value }
        : { principal: { roles: $("explain-roles").value.split(",").map((s) => s.trim()).filter(Boolean), attributes: parseObject($("explain-attributes").value, "Attributes") ?? {}, ...(scopes.length > 0 ? { scopes } : {}) } }),
      body: parseObject($("explain-body").value, "Body"),
      resource: parseObject($("explain-resource").value, "Resource attributes"),
    };
    renderExplanation(await api("explain", body));
  } catch (error) {
    fail($("explain-result"), error);
  }
});

$("diff-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const hours = $("diff-replay").value.trim();
    const { diff, replay } = await api("diff", { from: $("diff-from").value, to: $("diff-to").value, ...(hours === "" ? {} : { replayMs: Math.round(Number(hours) * 3_600_000) }) });
    const cells = el("ul", "cells", ...diff.cells.map((c) => el("li", c.change === "allow→deny" ? "deny" : c.change === "deny→allow" ? "allow" : null, `${c.change} ${c.role} ${c.method} ${c.endpoint}: ${c.from.verdict} [${c.from.rules.join(", ")}] → ${c.to.verdict} [${c.to.rules.join(", ")}]`)));
    const rules = el("ul", "rule-changes", ...diff.rules.map((r) => el("li", null, `${r.change} ${r.id} [${r.role}]`)));
    const parts = [el("p", null, `${diff.from} → ${diff.to}: ${diff.cells.length} of ${diff.compared} role × endpoint × method cells changed`), cells, el("h3", null, "Rules"), rules];
    if (replay) {
      parts.push(el("h3", null, "Replay of the audit log"), el("p", null, `${replay.rows} decisions since ${replay.since}: ${replay.replayed} replayed, ${replay.allowToDeny} allow→deny, ${replay.denyToAllow} deny→allow`));
      parts.push(el("ul", null, ...replay.cells.map((c) => el("li", null, `${c.change} ${c.count} ${c.endpoint ?? "(no endpoint)"} as ${c.roles}, e.g. ${c.examples.join(", ")}`)), ...replay.skipped.map((s) => el("li", null, `not replayed: ${s.count} ${s.why}`))));
    }
    $("diff-result").replaceChildren(...parts);
  } catch (error) {
    fail($("diff-result"), error);
  }
});

async function activation(path, body) {
  try {
    const result = await api(path, body);
    $("activate-result").replaceChildren(el("p", "allow", result.outcome === "unchanged" ? `${result.record.version} is already active.` : `Activated ${result.record.version}${result.previous ? ` (was ${result.previous})` : ""}; every instance follows within a second.`));
    await refreshStatus();
    await loadVersions();
  } catch (error) {
    fail($("activate-result"), error);
  }
}

$("activate-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const reason = $("activate-reason").value.trim();
  void activation("activate", { version: $("activate-version").value, ...(reason === "" ? {} : { reason }) });
});
$("rollback-submit").addEventListener("click", () => {
  const reason = $("activate-reason").value.trim();
  void activation("rollback", reason === "" ? {} : { reason });
});

await refreshStatus();
await loadVersions().catch((error) => fail($("explain-result"), error));
document.body.dataset.ready = "true";
