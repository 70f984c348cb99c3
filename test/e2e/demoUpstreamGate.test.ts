// `npm start`'s demo (issue 17): the in-process marketplace listens on a loopback port anyone on the
// host can reach. It must believe only the gateway's signed assertion, not `x-gerbang-*` headers.
import t from "tap";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startGerbang } from "../helpers/processes.ts";
import { eventually } from "../helpers/eventually.ts";

const dir = mkdtempSync(join(tmpdir(), "gerbang-demo-gate-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const port = await freePort();
const config = join(dir, "gerbang.json");
writeFileSync(config, JSON.stringify({ server: { port }, dataDir: dir, database: { embeddedDir: join(dir, "pglite") }, demo: { upstream: true, seedUsers: false } }));
const gateway = await startGerbang(["serve", "--config", config], {
  env: { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "", PORT: "" },
  readyUrl: `http://127.0.0.1:${port}/readyz`,
});
t.teardown(() => gateway.stop());
const announced = (): string | undefined => /demo marketplace upstream at (http:\/\/127\.0\.0\.1:\d+)/.exec(gateway.output())?.[1];
await eventually(() => announced() !== undefined);
const demoUrl = announced();
if (demoUrl === undefined) throw new Error(`the gateway did not say where its demo upstream listens:\n${gateway.output()}`);

t.test("straight to the demo upstream, forged identity headers are refused", async (t) => {
  const forged = { "x-gerbang-user": "admin-id", "x-gerbang-roles": "admin", "x-gerbang-auth": "session", "x-gerbang-policy": "2026-12-01" };
  const direct = await fetch(`${demoUrl}/api/admin/stats`, { headers: forged });
  t.equal(direct.status, 401, "no assertion: 401");
  t.same(await direct.json(), { error: "assertion_invalid" });
  const garbage = await fetch(`${demoUrl}/api/products`, { headers: { ...forged, "x-gerbang-assertion": "e30.e30.e30" } });
  t.equal(garbage.status, 401, "a made-up assertion: 401");
});

t.test("through the gateway, the same upstream answers", async (t) => {
  const products = await fetch(`http://127.0.0.1:${port}/api/products`);
  t.equal(products.status, 200, "the gateway's assertion is accepted");
  const body = (await products.json()) as { gerbang?: { auth?: string } };
  t.equal(body.gerbang?.auth, "anonymous");
});
