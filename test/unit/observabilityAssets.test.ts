// The Grafana dashboard and the example alert rules in deploy/ name only series the gateway exposes
// (read from a GatewayMetrics with every source), with labels those series have: a renamed metric
// fails here, not on an operator's empty panel.
import t, { type Test } from "tap";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { GatewayMetrics } from "../../src/metrics/gatewayMetrics.ts";

const metrics = new GatewayMetrics({
  audit: () => ({ pending: 0, written: 0, shed: 0, lost: 0, checkpoints: 0 }),
  circuits: () => [{ upstream: "u", state: "closed" }],
  policyVersion: () => "v",
  dependencies: async () => [{ name: "database", up: true }],
  caches: () => [{ cache: "sessions", hits: 1, misses: 1 }],
  activations: () => ({ refused: 0 }),
});
metrics.observe("e", "allow", "ALLOWED_BY_RULE", 200, 0.01, { name: "u", seconds: 0.005 });
metrics.observe("e", "none", "ENDPOINT", 429, 0.001, null);
const exposed = new Map<string, Set<string>>();
for (const m of await metrics.registry.getMetricsAsJSON()) {
  const labels = new Set(["instance", "job", "le", ...m.values.flatMap((v) => Object.keys(v.labels))]);
  const type = String(m.type);
  const names = type === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => m.name + s) : type === "summary" ? [m.name, `${m.name}_sum`, `${m.name}_count`] : [m.name];
  for (const name of names) exposed.set(name, labels);
}

function check(t: Test, where: string, expr: string): void {
  const series = [...expr.matchAll(/\b(gerbang_[a-z0-9_]+)(\{([^}]*)\})?/g)];
  t.ok(series.length > 0, `${where} names a gerbang series`);
  for (const [, name = "", , selector = ""] of series) {
    const labels = exposed.get(name);
    t.ok(labels, `${where}: ${name} is exposed`);
    for (const [, label = ""] of selector.matchAll(/([a-z_]+)\s*(=~|!=|=)/g)) t.ok(labels?.has(label), `${where}: ${name} has label ${label}`);
  }
  for (const [, list = ""] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
    for (const label of list.split(",").map((l) => l.trim())) {
      t.ok(series.some(([, name = ""]) => exposed.get(name)?.has(label)), `${where}: grouped by ${label}, a label of its series`);
    }
  }
}

t.test("the Grafana dashboard", async (t) => {
  const dashboard = JSON.parse(readFileSync(new URL("../../deploy/grafana/gerbang-dashboard.json", import.meta.url), "utf8")) as { uid: string; panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  t.equal(dashboard.uid, "gerbang-gateway");
  t.ok(dashboard.panels.length >= 10);
  for (const panel of dashboard.panels) for (const target of panel.targets) check(t, `panel "${panel.title}"`, target.expr);
  const covered = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((x) => [...x.expr.matchAll(/gerbang_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, "")))));
  for (const name of ["gerbang_requests_total", "gerbang_gateway_duration_seconds", "gerbang_upstream_duration_seconds", "gerbang_rate_limited_total", "gerbang_cache_hits_total", "gerbang_audit_queue_depth", "gerbang_audit_lost_total", "gerbang_audit_shed_total", "gerbang_circuit_state", "gerbang_dependency_up", "gerbang_policy_info", "gerbang_policy_activations_total"]) {
    t.ok(covered.has(name), `the dashboard shows ${name}`);
  }
});

t.test("the alert rules", async (t) => {
  const rules = parse(readFileSync(new URL("../../deploy/prometheus/gerbang-alerts.yaml", import.meta.url), "utf8")) as { groups: Array<{ rules: Array<{ alert: string; expr: string; annotations: { summary: string } }> }> };
  const all = rules.groups.flatMap((g) => g.rules);
  for (const rule of all) {
    check(t, `alert ${rule.alert}`, rule.expr);
    t.ok(rule.annotations.summary.length > 0, `${rule.alert} says what happened`);
  }
  for (const name of ["GerbangDenialSpike", "GerbangAuditEventsLost", "GerbangDegraded"]) t.ok(all.some((r) => r.alert === name), `${name} is an example`);
});
