// The metrics' own arithmetic: the gateway's time is the total minus the upstream's, a 429 counts in its
// bucket, and scrape-time sources are read when scraped.
import t from "tap";
import { GatewayMetrics } from "../../src/metrics/gatewayMetrics.ts";

t.test("observe splits the time and counts rate-limit refusals by bucket", async (t) => {
  let pending = 3;
  const metrics = new GatewayMetrics({ audit: () => ({ pending, written: 0, shed: 0, lost: 0, checkpoints: 0 }), policyVersion: () => "v9", circuits: () => [{ upstream: "a", state: "open" }], dependencies: async () => [{ name: "redis", up: false }] });
  metrics.observe("orders.get", "allow", "ALLOWED_BY_RULE", 200, 0.3, { name: "a", seconds: 0.25 });
  metrics.observe("orders.create", "none", "ENDPOINT", 429, 0.001, null);
  pending = 7;
  const text = await metrics.registry.metrics();
  t.match(text, /gerbang_gateway_duration_seconds_sum\{endpoint="orders.get"\} 0\.0(5|49999)/);
  t.match(text, /gerbang_upstream_duration_seconds_sum\{upstream="a"\} 0\.25/);
  t.match(text, /gerbang_rate_limited_total\{bucket="ENDPOINT"\} 1/);
  t.match(text, /gerbang_audit_queue_depth 7/, "read at scrape time");
  t.match(text, /gerbang_policy_info\{version="v9"\} 1/);
  t.match(text, /gerbang_circuit_state\{upstream="a"\} 2/);
  t.match(text, /gerbang_dependency_up\{dependency="redis"\} 0/);
});
