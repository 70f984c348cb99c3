// The admin HTTP API under the gateway's own prefix, authorized by the gateway's own policy: the shipped
// versions grant it to admins only; a version that does not map it denies it to everyone; activations
// through it are recorded with the admin's name and audited; cookie-authenticated writes need a trusted
// Origin like every other.
import t from "tap";
import pg from "pg";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { serviceGate } from "../helpers/services.ts";

const pgMissing = await serviceGate("postgres");
t.test("the admin API", { skip: pgMissing }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), "gerbang-admin-api-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const v of ["2026-11-27", "2026-12-01"]) cpSync(fileURLToPath(new URL(`../../policies/${v}`, import.meta.url)), join(root, v), { recursive: true });
  // A version without the admin API's endpoints: once active, nobody may use the API (default deny).
  cpSync(join(root, "2026-11-27"), join(root, "2026-11-28"), { recursive: true });
  rmSync(join(root, "2026-11-28", "endpoints", "gateway.yaml"));
  rmSync(join(root, "2026-11-28", "tests", "endpoints_test.yaml"));
  const { readFileSync, writeFileSync } = await import("node:fs");
  const manifest = join(root, "2026-11-28", "manifest.yaml");
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace('version: "2026-11-27"', 'version: "2026-11-28"').replace('created: "2026-11-27T00:00:00Z"', 'created: "2026-11-28T00:00:00Z"'));
  // And a catch-all that lets users read the whole site: it must not open the admin API to them.
  writeFileSync(join(root, "2026-11-28", "endpoints", "site.yaml"), "endpoints:\n  - { id: site.any, methods: ['*'], path: /**, action: read, subject: Site }\n");
  writeFileSync(join(root, "2026-11-28", "roles", "user.yaml"), readFileSync(join(root, "2026-11-28", "roles", "user.yaml"), "utf8").replace("rules:\n", "rules:\n  - { id: user.site.read, action: read, subject: Site }\n"));
  writeFileSync(join(root, "2026-11-28", "subjects.yaml"), readFileSync(join(root, "2026-11-28", "subjects.yaml"), "utf8") + "  - { name: Site, actions: [read], attributes: {} }\n");

  // No Redis here: each instance finds an activation by its periodic check, made short for the test.
  const env = await startGatewayEnv({ postgres: true, config: { policy: { dir: root, activationCheckMs: 200 } } });
  t.teardown(() => env.close());
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const call = async (path: string, options: { token?: string; cookie?: string; origin?: string; body?: unknown } = {}): Promise<{ status: number; json: Record<string, unknown> & { error?: { code: string; reason?: string; message: string; requestId: string } } }> => {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (options.cookie !== undefined) headers.cookie = options.cookie;
    if (options.origin !== undefined) headers.origin = options.origin;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${env.url}/admin/api/policy/${path}`, { method: options.body === undefined ? "GET" : "POST", headers, ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }) });
    return { status: response.status, json: (await response.json()) as never };
  };

  await t.test("status: admins only, as the policy says", async (t) => {
    const anonymous = await call("status");
    t.same([anonymous.status, anonymous.json.error?.code], [401, "UNAUTHENTICATED"]);
    const denied = await call("status", { token: user.token });
    t.same([denied.status, denied.json.error?.code, denied.json.error?.reason], [403, "FORBIDDEN", "NO_MATCHING_RULE"]);
    const ok = await call("status", { token: admin.token });
    t.equal(ok.status, 200);
    t.match(ok.json, { active: { version: "2026-12-01" }, instances: [{ version: "2026-12-01", state: "serving" }] });
  });

  await t.test("explain: a stated principal or a real user, under the active version or another", async (t) => {
    const stated = await call("explain", { token: admin.token, body: { method: "GET", path: "/api/orders/ord_1", principal: { roles: ["sales"], attributes: { region: "us" } }, resource: { region: "eu" } } });
    t.equal(stated.status, 200);
    t.match(stated.json, { version: "2026-12-01", outcome: { status: 403, reason: "CONDITIONS_NOT_MET" }, rules: [{ id: "sales.orders.read-region", conditions: [{ expected: "us", actual: "eu", met: false }] }] });
    const real = await call("explain", { token: admin.token, body: { method: "GET", path: "/api/inventory", user: "sales@demo.gerbang.dev", version: "2026-11-27" } });
    t.equal(real.status, 200, `a real user under another version: ${JSON.stringify(real.json).slice(0, 300)}`);
    t.match(real.json, { version: "2026-11-27", principal: { roles: ["sales"], attributes: { email: "sales@demo.gerbang.dev" } }, outcome: { status: 200, ruleId: "sales.inventory.read" } });
    const bad = await call("explain", { token: admin.token, body: { method: "GET", path: "/x", principal: { roles: [] }, version: "../etc" } });
    t.same([bad.status, bad.json.error?.code], [422, "OPERATION_REFUSED"], "versions are names under policy.dir, never paths");
    const malformed = await call("explain", { token: admin.token, body: { method: "FETCH", path: "/x" } });
    t.same([malformed.status, malformed.json.error?.code], [400, "MALFORMED_REQUEST"]);
  });

  await t.test("nothing under the prefix is forwarded, and API keys never administer", async (t) => {
    for (const [method, path] of [["GET", "/admin/playground/x"], ["GET", "/admin/api/policy/status/"], ["POST", "/admin/api/policy/status"], ["DELETE", "/admin/api/policy/activate"], ["GET", "/admin"]] as const) {
      await env.clearReceived();
      const response = await fetch(`${env.url}${path}`, { method, headers: { authorization: `Bearer ${admin.token}` } });
      const json = (await response.json()) as { error?: { code: string } };
      t.same([response.status, json.error?.code], [404, "ROUTE_NOT_FOUND"], `${method} ${path}`);
    }
    t.same(await env.received(), [], "the upstream never saw them");
    const made = await fetch(`${env.url}/api/keys`, { method: "POST", headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" }, body: JSON.stringify({ name: "ops", scopes: ["catalog:read"] }) });
    t.equal(made.status, 201);
    const { key } = (await made.json()) as { key: string };
    const byKey = await fetch(`${env.url}/admin/api/policy/status`, { headers: { "x-api-key": key } });
    const json = (await byKey.json()) as { error?: { reason?: string } };
    t.same([byKey.status, json.error?.reason], [403, "KEYS_CANNOT_ADMINISTER"]);
  });

  await t.test("a reason must be printable (it is printed in operators' terminals)", async (t) => {
    const escaped = await call("activate", { token: admin.token, body: { version: "2026-12-01", reason: "\u001b]0;pwned\u0007" } });
    t.same([escaped.status, escaped.json.error?.code], [400, "MALFORMED_REQUEST"]);
  });

  await t.test("a cookie-authenticated activation needs a trusted Origin", async (t) => {
    const forged = await call("activate", { cookie: admin.cookie, origin: "https://evil.example", body: { version: "2026-11-27" } });
    t.same([forged.status, forged.json.error?.code], [403, "ORIGIN_NOT_TRUSTED"]);
    const { rows } = await db.query("SELECT version FROM policy_activation ORDER BY id DESC LIMIT 1");
    t.equal(rows[0]?.version, "2026-12-01", "nothing was activated");
  });

  await t.test("activate and roll back: recorded with the admin's name, audited, refused when invalid", async (t) => {
    const draft = await call("activate", { token: admin.token, body: { version: "_next" } });
    t.same([draft.status, draft.json.error?.code], [422, "OPERATION_REFUSED"]);
    t.match(draft.json.error?.message, /_next is a draft/);
    const activated = await call("activate", { token: admin.token, body: { version: "2026-11-27", reason: "partner launch" } });
    t.equal(activated.status, 200, JSON.stringify(activated.json));
    t.match(activated.json, { outcome: "activated", previous: "2026-12-01", record: { version: "2026-11-27", activatedBy: "admin@demo.gerbang.dev (admin API)", reason: "partner launch" } });
    const back = await call("rollback", { token: admin.token, body: {} });
    t.match(back.json, { outcome: "activated", record: { version: "2026-12-01" } });
    let row: { upstream: string | null; endpoint_id: string; allowed: boolean } | undefined;
    for (let i = 0; i < 50 && row === undefined; i++) {
      ({ rows: [row] } = await db.query("SELECT upstream, endpoint_id, allowed FROM audit_event WHERE endpoint_id = 'gateway.policy.activate' AND allowed ORDER BY id DESC LIMIT 1"));
      if (row === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    t.same(row, { upstream: null, endpoint_id: "gateway.policy.activate", allowed: true }, "the admin API is audited like any request");
  });

  await t.test("a version that does not map the admin API denies it to admins too", async (t) => {
    const activated = await call("activate", { token: admin.token, body: { version: "2026-11-28" } });
    t.equal(activated.status, 200, JSON.stringify(activated.json));
    let status = await call("status", { token: admin.token });
    for (let i = 0; i < 50 && status.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = await call("status", { token: admin.token });
    }
    t.same([status.status, status.json.error?.reason], [403, "ENDPOINT_NOT_MAPPED"]);
    const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
    const rollback = await call("rollback", { token: user.token, body: {} });
    t.same([rollback.status, rollback.json.error?.reason], [403, "ENDPOINT_NOT_MAPPED"], "a catch-all the user may read is not the rollback endpoint");
    // The way back is the CLI (an operator with the database), not the API the policy closed.
    await db.query("INSERT INTO policy_activation (version, digest, activated_by) SELECT version, digest, 'test' FROM policy_activation WHERE version = '2026-12-01' ORDER BY id DESC LIMIT 1");
  });
});
