// GET /metrics against a running gateway: a direct loopback scraper needs no credentials, anyone else is
// asked for them and authorized by the policy (admins), metrics.port serves the same series on its own
// listener; requests are counted by endpoint id, decision, reason and status (never raw paths), with the
// gateway's and the upstream's time apart, and the audit queue, circuits, dependencies and policy version.
import t from "tap";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { freePort } from "../helpers/processes.ts";
import { serviceGate } from "../helpers/services.ts";

const pgMissing = await serviceGate("postgres");
t.test("metrics", { skip: pgMissing }, async (t) => {
  const metricsPort = await freePort();
  const env = await startGatewayEnv({ postgres: true, config: { metrics: { port: metricsPort } } });
  t.teardown(() => env.close());
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  for (let i = 0; i < 3; i++) await (await fetch(`${env.url}/api/products`)).arrayBuffer();
  await (await fetch(`${env.url}/api/inventory`)).arrayBuffer();
  for (let i = 0; i < 20; i++) await (await fetch(`${env.url}/api/unknown-${i}-${Math.random().toString(36).slice(2)}`)).arrayBuffer();

  const scrape = async (headers: Record<string, string> = {}, base = env.url): Promise<{ status: number; text: string; type: string | null }> => {
    const response = await fetch(`${base}/metrics`, { headers });
    return { status: response.status, text: await response.text(), type: response.headers.get("content-type") };
  };
  const value = (text: string, series: string): number => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
  };

  const local = await scrape();
  t.equal(local.status, 200, "a direct loopback scraper needs no credentials");
  t.match(local.type, /^text\/plain; version=0\.0\.4/);
  t.ok(value(local.text, 'gerbang_requests_total{endpoint="products.list",decision="allow",reason="ALLOWED_BY_RULE",status="200"}') >= 3);
  t.equal(value(local.text, 'gerbang_requests_total{endpoint="inventory.list",decision="deny",reason="NO_MATCHING_RULE",status="401"}'), 1);
  t.equal(value(local.text, 'gerbang_requests_total{endpoint="unmapped",decision="deny",reason="ENDPOINT_NOT_MAPPED",status="403"}'), 20);
  t.notMatch(local.text, /unknown-/, "raw paths never become labels");
  t.ok(value(local.text, 'gerbang_upstream_duration_seconds_count{upstream="marketplace"}') >= 3, "the upstream's time, apart");
  t.ok(value(local.text, 'gerbang_gateway_duration_seconds_count{endpoint="products.list"}') >= 3, "the gateway's own time");
  t.equal(value(local.text, 'gerbang_policy_info{version="2026-12-07"}'), 1);
  t.equal(value(local.text, 'gerbang_circuit_state{upstream="marketplace"}'), 0);
  t.equal(value(local.text, 'gerbang_dependency_up{dependency="database"}'), 1);
  t.equal(value(local.text, 'gerbang_audit_lost_total'), 0);
  t.equal(value(local.text, 'gerbang_audit_shed_total'), 0);
  t.ok(value(local.text, "gerbang_audit_queue_depth") >= 0);
  t.match(local.text, /^gerbang_process_cpu_user_seconds_total \d/m, "Node process metrics");
  // Users' requests: the first lookup of a session misses, the next ones hit.
  for (let i = 0; i < 3; i++) await (await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${user.token}` } })).arrayBuffer();
  const cached = await scrape();
  t.ok(value(cached.text, 'gerbang_cache_hits_total{cache="sessions"}') >= 2, "session cache hits are counted");
  t.ok(value(cached.text, 'gerbang_cache_misses_total{cache="sessions"}') >= 1, "and misses");
  t.ok(value(cached.text, 'gerbang_cache_hits_total{cache="abilities"}') >= 1, "compiled abilities are reused");
  t.ok(value(cached.text, 'gerbang_cache_misses_total{cache="keys"}') >= 0, "the key cache is reported");
  t.ok(value(cached.text, 'gerbang_cache_misses_total{cache="resolver"}') >= 0, "and the resolver's");
  t.equal(value(cached.text, 'gerbang_policy_activations_total{outcome="refused"}'), 0, "activation outcomes are counted");

  const relayed = await scrape({ "x-forwarded-for": "203.0.113.9" });
  t.equal(relayed.status, 401, "a request relayed by a proxy is not a loopback scraper");
  t.equal((await scrape({ authorization: `Bearer ${user.token}` , forwarded: "for=203.0.113.9" })).status, 403, "the policy allows admins only");
  const allowed = await scrape({ authorization: `Bearer ${admin.token}`, forwarded: "for=203.0.113.9" });
  t.equal(allowed.status, 200);
  t.match(allowed.text, /gerbang_requests_total\{endpoint="gateway.metrics",decision="deny",reason="NO_MATCHING_RULE",status="401"\} 1/, "the refused scrapes are counted too");

  const own = await scrape({}, `http://127.0.0.1:${metricsPort}`);
  t.equal(own.status, 200, "metrics.port serves the same series");
  t.match(own.text, /gerbang_requests_total\{endpoint="products.list"/);
});
