// Faults, policy side (issue 4): SIGHUP makes a running gateway re-read its policy folder. A version
// that is corrupt, invalid, failing its own tests, hidden behind an unreadable manifest, or an active
// version edited in place is refused and the running version keeps serving, under load, without one
// failed request. A valid version is activated without a restart; taking it away rolls back.
import t, { type Test } from "tap";
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { writeStricterVersion } from "../helpers/policyVersions.ts";

const pgMissing = await serviceGate("postgres");
const root = mkdtempSync(join(tmpdir(), "gerbang-policies-"));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const ACTIVE = "2026-12-01";
const NEXT = "2026-12-02";
cpSync(fileURLToPath(new URL(`../../policies/${ACTIVE}`, import.meta.url)), join(root, ACTIVE), { recursive: true });
const env = await startGatewayEnv({ postgres: pgMissing === false, config: { policy: { dir: root }, logLevel: "info" } });
t.teardown(() => env.close());

/** The next version: the active one with anonymous product reads taken away (and its test saying so unless told otherwise). */
const writeNext = (options: { updateTest: boolean }): string => writeStricterVersion(root, ACTIVE, NEXT, options);

/** Sends SIGHUP and waits for the gateway to log the reload's outcome. */
async function reload(): Promise<string> {
  // Complete lines only: the last one may still be arriving.
  const outcomes = (): string[] => env.gateway.output().split("\n").slice(0, -1).filter((line) => line.includes('"msg":"policy reload'));
  const before = outcomes().length;
  env.gateway.child.kill("SIGHUP");
  const deadline = Date.now() + 20_000;
  while (outcomes().length === before) {
    // The gateway's own last words say why (it may have exited: the code is in the message).
    if (Date.now() > deadline) throw new Error(`no reload outcome logged within 20 s (gateway exit code ${String(env.gateway.child.exitCode)}, signal ${String(env.gateway.child.signalCode)}):\n${env.gateway.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return outcomes().at(-1) ?? "";
}
/** The policy version the upstream was told for one tagged probe request (the background load is not tagged). */
const policyUpstreamSaw = async (headers: Record<string, string> = {}): Promise<string | undefined> => {
  const tag = randomUUID();
  await env.clearReceived();
  await fetch(`${env.url}/api/products`, { headers: { ...headers, "x-probe": tag } });
  return (await env.received()).find((r) => r.headers["x-probe"] === tag)?.headers["x-gerbang-policy"];
};
const readiness = async (): Promise<{ status: number; body: { status?: string; checks?: Record<string, string> } }> => {
  const response = await fetch(`${env.url}/readyz`);
  return { status: response.status, body: (await response.json()) as { status?: string; checks?: Record<string, string> } };
};

// An admin reading products, all the time, from four clients (admin rules are the same in both
// versions): no reload, refused or activated, may make one of these requests fail.
const admin = await env.signIn("admin@demo.gerbang.dev", "demo-admin-password");
const load = { running: true, statuses: new Map<number, number>() };
const clients = Array.from({ length: 4 }, async () => {
  while (load.running) {
    const status = await fetch(`${env.url}/api/products`, { headers: { authorization: `Bearer ${admin.token}` } }).then(
      async (r) => (await r.arrayBuffer(), r.status),
      () => 0,
    );
    load.statuses.set(status, (load.statuses.get(status) ?? 0) + 1);
  }
});
t.teardown(async () => {
  load.running = false;
  await Promise.all(clients);
});
/** Statuses the load saw since the last call. */
const loadSince = (): Record<string, number> => {
  const seen = Object.fromEntries([...load.statuses].map(([status, n]) => [String(status), n]));
  load.statuses.clear();
  return seen;
};
const onlyOk = (t: Test, seen: Record<string, number>, when: string): void => {
  t.same(Object.keys(seen), ["200"], `${when}: the load got only 200s (${JSON.stringify(seen)})`);
};

t.test("a corrupt or invalid next version is refused and the running one keeps serving", async (t) => {
  t.equal(await policyUpstreamSaw(), ACTIVE);
  loadSince();
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ["a role file that is not YAML", (dir) => writeFileSync(join(dir, "roles", "anonymous.yaml"), "role: anonymous\nrules: [\n  - id: x\n"), /not valid YAML/],
    ["a rule with an unknown field", (dir) => writeFileSync(join(dir, "roles", "anonymous.yaml"), "role: anonymous\nrules:\n  - id: anonymous.all\n    action: manage\n    subject: all\n    grant: everything\n"), /anonymous\.yaml/],
    ["a truncated endpoint file", (dir) => writeFileSync(join(dir, "endpoints", "marketplace.yaml"), readFileSync(join(root, ACTIVE, "endpoints", "marketplace.yaml"), "utf8").slice(0, 300)), /marketplace\.yaml/],
    ["an unreadable manifest (the newest folder would silently be skipped)", (dir) => writeFileSync(join(dir, "manifest.yaml"), "version: [\n"), new RegExp(`${NEXT}/manifest\\.yaml`)],
    ["an empty policy file", (dir) => writeFileSync(join(dir, "roles", "admin.yaml"), ""), /admin\.yaml/],
    [
      "a FIFO as the manifest",
      (dir) => {
        rmSync(join(dir, "manifest.yaml"));
        execFileSync("mkfifo", [join(dir, "manifest.yaml")]);
      },
      new RegExp(`${NEXT}/manifest\\.yaml: missing or not valid YAML`),
    ],
    // A FIFO would block the loader (and the event loop with it) forever: refused before anything reads it.
    ["a FIFO named like a policy file", (dir) => execFileSync("mkfifo", [join(dir, "roles", "pipe.yaml")]), /pipe\.yaml: not a regular file/],
  ];
  for (const [name, corrupt, problem] of cases) {
    corrupt(writeNext({ updateTest: true }));
    const outcome = await reload();
    t.match(outcome, /policy reload refused/, `${name}: refused`);
    t.match(outcome, problem, `${name}: the log names the problem`);
    t.match(outcome, new RegExp(`"active":"${ACTIVE}"`), `${name}: the log says which version keeps serving`);
    t.equal(await policyUpstreamSaw(), ACTIVE, `${name}: still ${ACTIVE}`);
    t.equal((await fetch(`${env.url}/api/products`)).status, 200, `${name}: anonymous reads still follow ${ACTIVE}`);
    const ready = await readiness();
    t.equal(ready.status, 200, `${name}: still serving`);
    t.match(ready.body, { status: "degraded", checks: { policyReload: "failing", policy: "ok" } }, `${name}: readiness says the reload failed`);
  }
  onlyOk(t, loadSince(), "during refused reloads");
});

t.test("a version whose own policy tests fail is refused", async (t) => {
  writeNext({ updateTest: false });
  const outcome = await reload();
  t.match(outcome, /policy reload refused/);
  t.match(outcome, /anonymous reads products: expected allow, got deny/, "the log names the failing test");
  t.equal(await policyUpstreamSaw(), ACTIVE);
  onlyOk(t, loadSince(), "after a refused reload");
});

t.test("an active version edited in place is refused: versions are immutable", async (t) => {
  rmSync(join(root, NEXT), { recursive: true, force: true });
  const file = join(root, ACTIVE, "roles", "anonymous.yaml");
  const original = readFileSync(file, "utf8");
  writeFileSync(file, "role: anonymous\nrules: []\n");
  const outcome = await reload();
  t.match(outcome, /policy reload refused/);
  t.match(outcome, /changed on disk while active; versions are immutable/);
  t.equal((await fetch(`${env.url}/api/products`)).status, 200, "the rules in memory keep serving, not the edited file");
  writeFileSync(file, original);
  t.match(await reload(), /policy reload: unchanged/, "restored: the reload is a no-op");
  t.match((await readiness()).body, { status: "ready", checks: { policyReload: "ok" } }, "and readiness is clean again");
  onlyOk(t, loadSince(), "around the in-place edit");
});

t.test("a valid version is activated without a restart, and taking it away rolls back", async (t) => {
  writeNext({ updateTest: true });
  const outcome = await reload();
  t.match(outcome, /"msg":"policy reloaded"/);
  t.match(outcome, new RegExp(`"version":"${NEXT}","previous":"${ACTIVE}"`));
  t.equal((await fetch(`${env.url}/api/products`)).status, 401, `${NEXT} takes anonymous product reads away`);
  t.equal(await policyUpstreamSaw({ authorization: `Bearer ${admin.token}` }), NEXT, "the upstream is told the new version");
  t.match((await readiness()).body, { status: "ready" });

  // Rollback: the bad version is moved out of the way (an _ prefix hides a folder) and the previous is the newest again.
  // It must come back as it was served: edited meanwhile, it is refused.
  const file = join(root, ACTIVE, "roles", "sales.yaml");
  const original = readFileSync(file, "utf8");
  writeFileSync(file, original.replace("rules:", "# edited after it was served\nrules:"));
  renameSync(join(root, NEXT), join(root, `_${NEXT}`));
  const edited = await reload();
  t.match(edited, /policy reload refused/, "a rollback to a version edited since it was served is refused");
  t.match(edited, new RegExp(`version ${ACTIVE} changed on disk since it was served`));
  t.equal((await fetch(`${env.url}/api/products`)).status, 401, `${NEXT} keeps serving`);
  writeFileSync(file, original);
  t.match(await reload(), new RegExp(`"version":"${ACTIVE}","previous":"${NEXT}"`), "rolled back");
  t.equal(await policyUpstreamSaw(), ACTIVE);
  t.equal((await fetch(`${env.url}/api/products`)).status, 200, "anonymous reads are back");
  onlyOk(t, loadSince(), "across activation and rollback");
  t.equal(env.gateway.child.exitCode, null, "the same process all along");
});

t.test("reload outcomes are counted in the metrics and audited", async (t) => {
  const text = await (await fetch(`${env.url}/metrics`)).text();
  const count = (outcome: string): number => Number(new RegExp(`^gerbang_policy_activations_total\\{outcome="${outcome}"\\} (\\d+)`, "m").exec(text)?.[1] ?? "NaN");
  t.ok(count("refused") >= 5, "every refused reload is counted");
  t.ok(count("activated") >= 2, "and every activation (the new version, then the rollback)");
  if (env.databaseUrl === null) return;
  const { default: pg } = await import("pg");
  const db = new pg.Client({ connectionString: env.databaseUrl });
  await db.connect();
  t.teardown(() => db.end());
  const { rows } = await db.query<{ action: string; n: string }>("SELECT action, count(*) AS n FROM audit_event WHERE action LIKE 'policy.%' GROUP BY action");
  const audited = Object.fromEntries(rows.map((r) => [r.action, Number(r.n)]));
  t.ok((audited["policy.refused"] ?? 0) >= 5, "refusals are audit events");
  t.ok((audited["policy.activated"] ?? 0) >= 2, "and activations");
});
