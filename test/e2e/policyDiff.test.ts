// `gerbang policy diff <from> <to> --replay` and the admin API's diff against a running gateway: the
// traffic it audited is decided again under a candidate version that was never activated, and the
// flips are counted per endpoint and role with example request ids.
import t, { type Test } from "tap";
import pg from "pg";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { writeStricterVersion } from "../helpers/policyVersions.ts";
import { runGerbang } from "../helpers/processes.ts";
import { serviceGate } from "../helpers/services.ts";

interface Summary {
  rows: number;
  replayed: number;
  allowToDeny: number;
  denyToAllow: number;
  cells: Array<{ endpoint: string; roles: string; change: string; count: number; examples: string[] }>;
  skipped: Array<{ why: string; count: number }>;
}

const pgMissing = await serviceGate("postgres");
t.test("diff with replay of audited traffic", { skip: pgMissing }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), "gerbang-diff-e2e-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(fileURLToPath(new URL("../../policies/2026-12-01", import.meta.url)), join(root, "2026-12-01"), { recursive: true });
  const env = await startGatewayEnv({ postgres: true, config: { policy: { dir: root, version: "2026-12-01" } } });
  t.teardown(() => env.close());
  // The candidate appears after start: it is never active, only compared.
  writeStricterVersion(root, "2026-12-01", "2026-12-02", { updateTest: true });
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());

  const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");
  const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
  const send = async (path: string, token?: string): Promise<number> => {
    const response = await fetch(`${env.url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
    await response.arrayBuffer();
    return response.status;
  };
  for (let i = 0; i < 4; i++) t.equal(await send("/api/products"), 200);
  t.equal(await send("/api/products/prd_404"), 404, "allowed by the policy; the upstream has no such product");
  t.equal(await send("/api/inventory", sales.token), 200);
  t.equal(await send("/api/inventory"), 401);
  let ids: string[] = [];
  for (let i = 0; i < 50 && ids.length < 5; i++) {
    const { rows } = await db.query<{ request_id: string }>("SELECT request_id FROM audit_event WHERE path LIKE '/api/products%' AND principal_id IS NULL");
    ids = rows.map((r) => r.request_id);
    if (ids.length < 5) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(ids.length, 5, "the anonymous product reads are audited");

  const expectFlips = (t: Test, replay: Summary): void => {
    t.same([replay.allowToDeny, replay.denyToAllow], [5, 0], "the five anonymous product reads would be refused; nothing else flips");
    t.same(
      replay.cells.map((c) => [c.endpoint, c.roles, c.change, c.count]),
      [
        ["products.list", "anonymous", "allow→deny", 4],
        ["products.get", "anonymous", "allow→deny", 1],
      ],
    );
    t.ok(replay.cells[0]?.examples.every((id) => ids.includes(id)), "examples are request ids of the audited requests");
  };

  await t.test("from the CLI", async (t) => {
    const run = await runGerbang(["policy", "diff", "2026-12-01", "2026-12-02", "--replay", "1h", "--json", "--config", env.configFile], { DATABASE_URL: env.databaseUrl ?? "", REDIS_URL: "", GERBANG_SECRET: "" });
    t.equal(run.code, 0, run.stderr);
    const { diff, replay } = JSON.parse(run.stdout) as { diff: { cells: unknown[] }; replay: Summary };
    t.equal(diff.cells.length, 2);
    expectFlips(t, replay);
    const text = await runGerbang(["policy", "diff", "2026-12-01", "2026-12-02", "--replay", "1h", "--config", env.configFile], { DATABASE_URL: env.databaseUrl ?? "", REDIS_URL: "", GERBANG_SECRET: "" });
    t.match(text.stdout, /replay of \d+ decisions 2026-12-01 made since .*, under 2026-12-02: \d+ replayed, \d+ unchanged, 5 allow->deny, 0 deny->allow\n {2}allow→deny +4 {2}products\.list as anonymous {2}e\.g\. /);
    const bad = await runGerbang(["policy", "diff", "2026-12-01", "2026-12-02", "--replay", "yesterday", "--config", env.configFile], { DATABASE_URL: env.databaseUrl ?? "" });
    t.equal(bad.code, 2);
    t.match(bad.stderr, /--replay takes a duration/);
  });

  await t.test("from the admin API", async (t) => {
    const response = await fetch(`${env.url}/admin/api/policy/diff`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
      body: JSON.stringify({ from: "2026-12-01", to: "2026-12-02", replayMs: 3_600_000 }),
    });
    t.equal(response.status, 200);
    const { diff, replay } = (await response.json()) as { diff: { cells: Array<{ change: string }> }; replay: Summary };
    t.same(diff.cells.map((c) => c.change), ["allow→deny", "allow→deny"]);
    expectFlips(t, replay);
    const denied = await fetch(`${env.url}/admin/api/policy/diff`, { method: "POST", headers: { authorization: `Bearer ${sales.token}`, "content-type": "application/json" }, body: JSON.stringify({ from: "2026-12-01", to: "2026-12-02" }) });
    t.equal(denied.status, 403, "sales may not diff: the policy says admins only");
  });
});
