// `gerbang policy explain` as a security engineer runs it: a role with attributes, or a real user read
// from PostgreSQL; text for reading, --json for tools; a draft can be asked before it is published.
import t from "tap";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runGerbang } from "../helpers/processes.ts";
import { serviceGate } from "../helpers/services.ts";
import { createTestDatabase } from "../helpers/testDatabase.ts";

const SHIPPED = new URL("../../policies/", import.meta.url).pathname;
const cwd = mkdtempSync(join(tmpdir(), "gerbang-explain-"));
t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
const root = join(cwd, "policies");
cpSync(SHIPPED, root, { recursive: true });
writeFileSync(join(cwd, "gerbang.yaml"), `policy:\n  dir: ${root}\ndemo:\n  upstream: true\n`);
const explain = (args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof runGerbang> =>
  runGerbang(["policy", "explain", ...args, "--config", join(cwd, "gerbang.yaml")], { DATABASE_URL: "", REDIS_URL: "", ...env }, { cwd });

t.test("a role with attributes: the decision, the endpoint, each rule with the values compared", async (t) => {
  const run = await explain(["GET", "/api/orders/ord_2", "--role", "sales", "--attr", "region=us", "--resource", '{"id":"ord_2","buyerId":"u1","region":"eu"}']);
  t.equal(run.code, 0, run.stderr);
  t.equal(
    run.stdout,
    [
      'version 2026-12-07; roles sales; attributes {"region":"us"}',
      "GET /api/orders/ord_2 -> endpoint orders.get: read Order (resource from resolver)",
      'resource {"id":"ord_2","buyerId":"u1","region":"eu"}',
      "decision: deny 403 CONDITIONS_NOT_MET",
      "rules for read Order (first that matches decides):",
      "  - sales.orders.read-region [sales] allow: conditions not met",
      '      FAIL region $eq "${principal.region}" = "us"; resource has "eu"',
      "other rules of these roles (do not apply): sales.products.read, sales.shops.read, sales.orders.update-status-region, sales.inventory.read",
      "",
    ].join("\n"),
  );
  const json = await explain(["PATCH", "/api/shops/s1", "--role", "user", "--attr", "id=u1", "--body", '{"ownerId":"u9"}', "--resource", '{"ownerId":"u1"}', "--json"]);
  const parsed = JSON.parse(json.stdout) as { outcome: { status: number; ruleId: string }; blockedFields: string[]; endpoint: { id: string } };
  t.same([parsed.outcome.status, parsed.outcome.ruleId, parsed.blockedFields, parsed.endpoint.id], [403, "user.shops.owner-immutable", ["ownerId"], "shops.update"]);
});

t.test("a draft or an older version can be asked", async (t) => {
  cpSync(join(root, "2026-12-01"), join(root, "_next"), { recursive: true });
  const manifest = join(root, "_next", "manifest.yaml");
  writeFileSync(manifest, (await import("node:fs")).readFileSync(manifest, "utf8").replace('version: "2026-12-01"', "version: next"));
  writeFileSync(join(root, "_next", "roles", "anonymous.yaml"), "role: anonymous\nrules: []\n");
  t.match((await explain(["GET", "/api/products", "--role", "anonymous", "--version", "_next"])).stdout, /version next; .*\ndecision: deny 401 NO_MATCHING_RULE/s);
  t.match((await explain(["GET", "/api/products", "--role", "anonymous"])).stdout, /decision: allow \(forwarded\) 200 ALLOWED_BY_RULE by rule anonymous\.products\.read/);
  t.match((await explain(["GET", "/api/inventory", "--role", "partner", "--version", "2026-11-26"])).stdout, /version 2026-11-26; .*decision: deny 403 NO_MATCHING_RULE/s, "2026-11-26 has no partner role");
});

t.test("mistakes are one line and exit 2", async (t) => {
  for (const [args, message] of [
    [["GET", "/api/products"], /give --role <roles> or --user <email>/],
    [["GET", "/api/products", "--role", "user", "--user", "a@b.c"], /give --role <roles> or --user <email>/],
    [["GET", "api/products", "--role", "user"], /the path must start with \//],
    [["FETCH", "/api/products", "--role", "user"], /unknown method FETCH/],
    [["POST", "/api/orders", "--role", "user", "--body", "{nope"], /--body must be JSON/],
    [["POST", "/api/orders", "--role", "user", "--body", "[1]"], /--body must be a JSON object/],
    [["GET", "/api/orders/o", "--role", "user", "--attr", "id"], /--attr takes key=value, not id/],
    [["GET", "/api/../admin/api/policy/status", "--role", "user"], /refuses this path before any policy is asked \(DOT_SEGMENT\)/],
  ] as const) {
    const run = await explain([...args]);
    t.equal(run.code, 2, args.join(" "));
    t.match(run.stderr, message);
    t.equal(run.stderr.trim().split("\n").length, 1, "one line");
  }
});

t.test("gerbang policy test knows the demo's accounts by email", async (t) => {
  cpSync(join(root, "2026-12-01"), join(root, "_demo"), { recursive: true });
  const manifest = join(root, "_demo", "manifest.yaml");
  const { readFileSync } = await import("node:fs");
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace('version: "2026-12-01"', "version: demo").replace('created: "2026-12-01T00:00:00Z"', 'created: "2026-12-09T00:00:00Z"'));
  writeFileSync(join(root, "_demo", "tests", "demo_test.yaml"), "requests:\n  - name: the demo's sales account reads eu orders\n    request: { method: GET, path: /api/orders/o1 }\n    resource: { region: eu }\n    expect: { \"sales@demo.gerbang.dev\": { status: 200, rule: sales.orders.read-region } }\n");
  const run = await runGerbang(["policy", "test", "_demo", "--config", join(cwd, "gerbang.yaml")], {}, { cwd });
  t.equal(run.code, 0, run.stdout);
  t.match(run.stdout, /ok {4}_demo\/tests\/demo_test\.yaml: the demo's sales account reads eu orders as sales@demo\.gerbang\.dev/);
  rmSync(join(root, "_demo"), { recursive: true });
});

const pgMissing = await serviceGate("postgres");
t.test("--user reads the user's roles and attributes from the database", { skip: pgMissing }, async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const env = { DATABASE_URL: db.url, GERBANG_SECRET: "s".repeat(40) };
  t.equal((await runGerbang(["migrate", "--config", join(cwd, "gerbang.yaml")], { ...env, REDIS_URL: "" }, { cwd })).code, 0);
  const created = await runGerbang(["users", "create", "--email", "siti@example.com", "--password", "a-long-enough-password", "--role", "sales", "--attr", "region=eu", "--config", join(cwd, "gerbang.yaml")], { ...env, REDIS_URL: "" }, { cwd });
  t.equal(created.code, 0, created.stderr);
  const run = await explain(["GET", "/api/orders/ord_1", "--user", "siti@example.com", "--resource", '{"region":"eu"}'], env);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /roles sales; attributes \{"id":"[^"]+","email":"siti@example.com","region":"eu"\}/);
  t.match(run.stdout, /decision: allow \(forwarded\) 200 ALLOWED_BY_RULE by rule sales\.orders\.read-region/);
  const unknown = await explain(["GET", "/api/orders/ord_1", "--user", "nobody@example.com"], env);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no user with email nobody@example.com/);
});
