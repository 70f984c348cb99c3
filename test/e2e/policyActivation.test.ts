// Policy activation on a fleet (issue 14, versions and activation): the active version is recorded
// in PostgreSQL; `gerbang policy activate` / `rollback` reach both running instances within a second
// over Redis while requests keep flowing to both; a version that fails its tests is never recorded;
// an instance that cannot load the recorded version keeps serving its own and says why.
import t from "tap";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Redis } from "ioredis";
import { parse } from "yaml";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { writeStricterVersion } from "../helpers/policyVersions.ts";
import { runGerbang } from "../helpers/processes.ts";
import { testRedisUrl } from "../helpers/services.ts";

const root = mkdtempSync(join(tmpdir(), "gerbang-activation-"));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const ACTIVE = "2026-12-01";
const NEXT = "2026-12-02";
const BROKEN = "2026-12-03";
cpSync(fileURLToPath(new URL(`../../policies/${ACTIVE}`, import.meta.url)), join(root, ACTIVE), { recursive: true });
// The second instance reads its own copy of the folder, as a fleet member on another machine would.
const secondRoot = mkdtempSync(join(tmpdir(), "gerbang-activation-b-"));
t.teardown(() => rmSync(secondRoot, { recursive: true, force: true }));
cpSync(join(root, ACTIVE), join(secondRoot, ACTIVE), { recursive: true });
const LONELY = "2026-12-04";

/** A copy of the active version with anonymous product reads taken away (its test updated unless told otherwise). */
const writeVersion = (version: string, options: { updateTest: boolean }, everywhere = true): void => {
  writeStricterVersion(root, ACTIVE, version, options);
  if (everywhere) writeStricterVersion(secondRoot, ACTIVE, version, options);
};

const env = await startGatewayEnv({
  postgres: true,
  instances: 2,
  config: { policy: { dir: root, activationCheckMs: 60_000 }, redis: { url: testRedisUrl() } },
  instanceConfig: (i) => (i === 1 ? { policy: { dir: secondRoot, activationCheckMs: 60_000 } } : {}),
});
t.teardown(() => env.close());
const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang([...args, "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
const served = async (url: string): Promise<{ version: string; activation: { state: string; problem?: string } }> => {
  const body = (await (await fetch(`${url}/readyz`)).json()) as { details: { policy: { version: string }; policyActivation: { state: string; problem?: string } } };
  return { version: body.details.policy.version, activation: body.details.policyActivation };
};
/** Milliseconds until every instance serves `version` (Infinity past `limitMs`). */
async function reached(version: string, limitMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started <= limitMs) {
    if ((await Promise.all(env.urls.map(served))).every((s) => s.version === version)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
  return Infinity;
}

// Background load on both instances for the whole file: anonymous product reads, 200 or (once NEXT is
// active) 401, never anything else. Each answer is counted with the version the upstream was told.
const answers = new Map<string, number>();
let loading = true;
const load = Promise.all(
  env.urls.map(async (url) => {
    while (loading) {
      try {
        const response = await fetch(`${url}/api/products`);
        await response.arrayBuffer();
        answers.set(String(response.status), (answers.get(String(response.status)) ?? 0) + 1);
      } catch {
        answers.set("error", (answers.get("error") ?? 0) + 1);
      }
    }
  }),
);
t.teardown(async () => {
  loading = false;
  await load;
});

t.test("the first start recorded the configured (newest) version; a folder that appears later is not activated by itself", async (t) => {
  const status = await cli("policy", "status", "--json");
  t.equal(status.code, 0, status.stderr);
  const body = JSON.parse(status.stdout) as { active: { version: string; activatedBy: string }; instances: Array<{ version: string; state: string }> };
  t.equal(body.active.version, ACTIVE);
  t.match(body.active.activatedBy, /first start/);
  t.equal(body.instances.length, 2, "both instances report in");
  t.ok(body.instances.every((i) => i.version === ACTIVE && i.state === "serving"));
  writeVersion(NEXT, { updateTest: true });
  await new Promise((r) => setTimeout(r, 500));
  t.same((await Promise.all(env.urls.map(served))).map((s) => s.version), [ACTIVE, ACTIVE], "a new folder is only a candidate");
});

t.test("activate reaches both instances within a second, with no failed request", async (t) => {
  const run = await cli("policy", "activate", NEXT, "--reason", "take anonymous product reads away");
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, new RegExp(`^activated ${NEXT} \\(was ${ACTIVE}\\)`));
  const ms = await reached(NEXT, 5000);
  t.ok(ms <= 1000, `both instances serve ${NEXT} ${ms} ms after the command returned`);
  t.equal((await fetch(`${env.urls[1]}/api/products`)).status, 401, `${NEXT} decides on the second instance`);
  const again = await cli("policy", "activate", NEXT);
  t.match(again.stdout, `unchanged: ${NEXT} is already active`);
  const status = JSON.parse((await cli("policy", "status", "--json")).stdout) as { active: { version: string; reason: string }; history: Array<{ version: string }> };
  t.equal(status.active.reason, "take anonymous product reads away");
  t.same(status.history.map((h) => h.version).slice(0, 2), [NEXT, ACTIVE], "the history, newest first");
});

t.test("a version that fails its own tests is never recorded", async (t) => {
  writeVersion(BROKEN, { updateTest: false });
  const run = await cli("policy", "activate", BROKEN);
  t.equal(run.code, 1);
  t.match(run.stderr, new RegExp(`version ${BROKEN} is not activated`));
  t.match(run.stderr, /anonymous reads products: expected allow, got deny/, "every problem is named");
  const missing = await cli("policy", "activate", "1999-01-01");
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no policy version 1999-01-01/);
  const draft = await cli("policy", "activate", `_${NEXT}`);
  t.equal(draft.code, 1);
  t.match(draft.stderr, new RegExp(`_${NEXT} is a draft: publish it first`));
  const status = JSON.parse((await cli("policy", "status", "--json")).stdout) as { active: { version: string } };
  t.equal(status.active.version, NEXT);
  t.same((await Promise.all(env.urls.map(served))).map((s) => s.version), [NEXT, NEXT]);
});

t.test("rollback returns both instances to the previous version within a second", async (t) => {
  const run = await cli("policy", "rollback", "--reason", "partners complained");
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, new RegExp(`^activated ${ACTIVE} \\(was ${NEXT}\\)`));
  const ms = await reached(ACTIVE, 5000);
  t.ok(ms <= 1000, `both back on ${ACTIVE} ${ms} ms after the command returned`);
  t.equal((await fetch(`${env.urls[1]}/api/products`)).status, 200);
});

t.test("an instance that cannot load the recorded version keeps serving its own, is not ready, and says why", async (t) => {
  // What a fleet member with another copy of the folder sees: a recorded digest its files do not have.
  const client = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await client.connect();
  t.teardown(() => client.end());
  await client.query(`INSERT INTO policy_activation (version, digest, activated_by) VALUES ($1, $2, 'test')`, [NEXT, "0".repeat(64)]);
  // Told the way an activation tells them: the invalidation channel of this deployment's key prefix.
  const prefix = (parse(readFileSync(env.configFile, "utf8")) as { redis: { keyPrefix: string } }).redis.keyPrefix;
  const redis = new Redis(testRedisUrl());
  t.teardown(() => redis.disconnect());
  await redis.publish(`${prefix}invalidate`, JSON.stringify({ kind: "policy" }));
  let states: Array<Awaited<ReturnType<typeof served>>> = [];
  for (let i = 0; i < 100; i++) {
    states = await Promise.all(env.urls.map(served));
    if (states.every((s) => s.activation.state === "refused")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const state of states) {
    t.equal(state.activation.state, "refused");
    t.match(state.activation.problem, /differs from the one activated/);
    t.equal(state.version, ACTIVE, "the current version keeps serving");
  }
  t.equal((await fetch(`${env.urls[0]}/readyz`)).status, 503, "not ready while it cannot serve the recorded version");
  t.equal((await fetch(`${env.urls[0]}/api/products`)).status, 200, `still decided by ${ACTIVE}`);
  const status = await cli("policy", "status");
  t.equal(status.code, 1, "status exits 1 while an instance lags");
  t.equal(status.stdout.match(/\trefused\t.*differs from the one activated/g)?.length, 2, `both instances report the refusal and why:\n${status.stdout}`);
  // Activating a version they can load makes them ready again.
  t.equal((await cli("policy", "activate", ACTIVE)).code, 0);
  t.ok((await reached(ACTIVE, 5000)) <= 1000);
  for (let i = 0; i < 40 && (await fetch(`${env.urls[0]}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal((await fetch(`${env.urls[0]}/readyz`)).status, 200);
});

t.test("activated while one instance's folder lacks the version: that one keeps serving its own and says why", async (t) => {
  writeVersion(LONELY, { updateTest: true }, false);
  const run = await cli("policy", "activate", LONELY, "--reason", "only the first instance has it");
  t.equal(run.code, 0, run.stderr);
  let states: Array<Awaited<ReturnType<typeof served>>> = [];
  const started = Date.now();
  for (let i = 0; i < 100; i++) {
    states = await Promise.all(env.urls.map(served));
    if (states[0]?.version === LONELY && states[1]?.activation.state === "refused") break;
    await new Promise((r) => setTimeout(r, 25));
  }
  t.ok(Date.now() - started <= 1000, `both settled within a second (${Date.now() - started} ms)`);
  t.match(states[0], { version: LONELY, activation: { state: "serving" } }, "the instance with the folder serves it");
  t.match(states[1], { version: ACTIVE, activation: { state: "refused" } }, "the other keeps serving what it had");
  t.match(states[1]?.activation.problem, new RegExp(LONELY));
  t.equal((await fetch(`${env.urls[1]}/readyz`)).status, 503);
  const status = await cli("policy", "status", "--json");
  const parsed = JSON.parse(status.stdout) as { instances: Array<{ version: string; state: string; problem: string | null }> };
  t.same(parsed.instances.map((i) => [i.version, i.state]).sort(), [[ACTIVE, "refused"], [LONELY, "serving"]], "status names both");
  t.equal(status.code, 1);
  t.equal((await cli("policy", "activate", ACTIVE)).code, 0);
  t.ok((await reached(ACTIVE, 5000)) <= 1000, "a version both have brings both back");
  for (let i = 0; i < 40 && (await fetch(`${env.urls[1]}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal((await fetch(`${env.urls[1]}/readyz`)).status, 200);
});

t.test("no request failed while versions changed", async (t) => {
  loading = false;
  await load;
  const statuses = [...answers.keys()].sort();
  t.same(statuses.filter((s) => s !== "200" && s !== "401"), [], `answers: ${JSON.stringify([...answers])}`);
});

