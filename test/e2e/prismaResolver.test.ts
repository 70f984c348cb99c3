// Issue 17, the Prisma resolver: a real gateway reads ownership straight from the marketplace's own
// tables (prisma/marketplace, migrated into a throwaway PostgreSQL database) through a read-only
// role, caches like the HTTP resolver, decides writes on current rows and forgets a row after a write
// through it; a database that fails makes resolver endpoints fail closed; a role that could write,
// or a configuration naming what the tables do not have, stops the gateway before it serves.
import t from "tap";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { stringify } from "yaml";
import { serviceGate, testPgUrl } from "../helpers/services.ts";
import { createMarketplaceDatabase, grantRoles } from "../helpers/marketplaceDatabase.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { startRecordingUpstream } from "../helpers/recordingUpstream.ts";
import { runGerbang } from "../helpers/processes.ts";
import { errorOf } from "../helpers/catalogueError.ts";
import { withDatabase } from "../../src/db/adminUrl.ts";

const pgMissing = await serviceGate("postgres");
if (pgMissing !== false) throw new Error(`PostgreSQL is required: ${pgMissing}`);

const db = await createMarketplaceDatabase();
await grantRoles(db);
t.teardown(() => db.drop());
const { owner, reader, writer, password: PASSWORD } = db;
const q = pg.escapeIdentifier;
const urlAs = (role: string): string => db.urlAs(role);

const subjects = { Order: { model: "Order", attributes: ["buyerId", "region", "status"] }, Shop: { model: "Shop", attributes: ["ownerId", "region"] } };
const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());
const marketplace = (databaseUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: "marketplace",
  prefix: "/api",
  url: upstream.url,
  timeoutMs: 5000,
  resolver: { prisma: { databaseUrl, subjects, ...extra } },
});
const env = await startGatewayEnv({
  postgres: true,
  // A long cache: what is served from it and what is not must not depend on the machine's speed.
  config: { upstreams: [marketplace(urlAs(reader))], resolver: { timeoutMs: 2000, cacheTtlMs: 60000, cacheMaxEntries: 1000 } },
});
t.teardown(() => env.close());
const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
const sales = await env.signIn("sales@demo.gerbang.dev", "demo-sales-password");

let rows = 0;
async function order(fields: { buyerId: string; region: string | null; status: string }): Promise<string> {
  const id = `ord_${(rows += 1)}_${randomBytes(3).toString("hex")}`;
  await owner.query(`INSERT INTO "order" (id, buyer_id, product_id, quantity, region, status) VALUES ($1, $2, 'prd_1', 1, $3, $4)`, [id, fields.buyerId, fields.region, fields.status]);
  return id;
}
async function ask(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; reason: string | undefined; code: string | undefined }> {
  const response = await fetch(`${env.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, reason: errorOf(text).reason, code: errorOf(text).code };
}

t.test("ownership and region come from the marketplace's rows", async (t) => {
  const mine = await order({ buyerId: user.userId, region: "apac", status: "pending" });
  const theirs = await order({ buyerId: "usr_someone_else", region: "eu", status: "pending" });
  t.equal((await ask("GET", `/api/orders/${mine}`, user.token)).status, 200, "a buyer reads their order");
  t.match(await ask("GET", `/api/orders/${theirs}`, user.token), { status: 403, reason: "CONDITIONS_NOT_MET" }, "not another's");
  t.equal((await ask("GET", `/api/orders/${theirs}`, sales.token)).status, 200, "sales read their region's (eu)");
  t.match(await ask("GET", `/api/orders/${mine}`, sales.token), { status: 403, reason: "CONDITIONS_NOT_MET" }, "not another region's");
  t.match(await ask("GET", "/api/orders/ord_nobody", user.token), { status: 404, code: "RESOURCE_NOT_FOUND" }, "no such row: 404");
  t.match(await ask("GET", `/api/orders/${encodeURIComponent("o'; DROP TABLE \"order\"; --")}`, user.token), { status: 404 }, "an id is a value, never SQL");
  const shop = `shop_${randomBytes(3).toString("hex")}`;
  await owner.query(`INSERT INTO shop (id, name, owner_id, region) VALUES ($1, 'Kebun', $2, 'eu')`, [shop, user.userId]);
  t.equal((await ask("PATCH", `/api/shops/${shop}`, user.token, { name: "Kebun Baru" })).status, 200, "an owner updates their shop");
  t.match(await ask("PATCH", `/api/shops/${shop}`, sales.token, { name: "x" }), { status: 403 }, "sales do not");
  t.equal(upstream.received.filter((r) => r.url.startsWith("/.well-known/gerbang/")).length, 0, "the upstream was never asked for attributes");
});

t.test("reads are cached, writes decide on the current row, and a write through the gateway forgets the row", async (t) => {
  const id = await order({ buyerId: user.userId, region: "apac", status: "pending" });
  t.equal((await ask("GET", `/api/orders/${id}`, user.token)).status, 200);
  await owner.query(`UPDATE "order" SET status = 'shipped' WHERE id = $1`, [id]);
  t.equal((await ask("GET", `/api/orders/${id}`, user.token)).status, 200, "a read within the cache's lifetime uses the cached row");
  t.match(await ask("PATCH", `/api/orders/${id}`, user.token, { shippingAddress: "Jl. Baru 2" }), { status: 403, reason: "CONDITIONS_NOT_MET" }, "a write reads the row afresh: shipped orders keep their address");

  const other = await order({ buyerId: user.userId, region: "apac", status: "pending" });
  t.equal((await ask("PATCH", `/api/orders/${other}`, user.token, { shippingAddress: "Jl. Baru 3" })).status, 200, "allowed while pending");
  await owner.query(`UPDATE "order" SET buyer_id = 'usr_someone_else' WHERE id = $1`, [other]);
  t.match(await ask("GET", `/api/orders/${other}`, user.token), { status: 403 }, "after the write the row is read again, not served from the cache");
});

t.test("a business database that fails makes resolver endpoints fail closed, and the rest serve on", async (t) => {
  const id = await order({ buyerId: user.userId, region: "apac", status: "pending" });
  await owner.query(`REVOKE SELECT ON "order" FROM ${q(reader)}`);
  try {
    t.match(await ask("GET", `/api/orders/${id}`, user.token), { status: 502, code: "RESOLVER_FAILED", reason: "DATABASE" }, "never allowed on attributes it could not read");
    t.equal((await ask("GET", "/api/products", user.token)).status, 200, "endpoints without a resolver are unaffected");
  } finally {
    await owner.query(`GRANT SELECT ON "order" TO ${q(reader)}`);
  }
  t.equal((await ask("GET", `/api/orders/${id}`, user.token)).status, 200, "and it recovers");
  const ready = (await (await fetch(`${env.url}/readyz`)).json()) as { checks?: Record<string, unknown> };
  t.match(JSON.stringify(ready), /resolver:marketplace/, "/readyz names the business database");
  t.match(env.gateway.output(), /resolver\.prisma: Order lookup failed/, "the failure is logged");
  t.notMatch(env.gateway.output(), PASSWORD, "without the database password");
});

t.test("the gateway does not start with a role that could write, or with subjects the tables do not have", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-prisma-resolver-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const start = async (name: string, upstreamConfig: Record<string, unknown>): Promise<{ code: number | null; stderr: string }> => {
    const file = join(dir, `${name}.yaml`);
    // The gateway's database of the running environment (migrated already): these stop before serving.
    writeFileSync(file, stringify({ dataDir: join(dir, "data"), database: { url: env.databaseUrl }, logLevel: "warn", server: { port: 0 }, upstreams: [upstreamConfig] }));
    return runGerbang(["serve", "--config", file], { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" });
  };
  const superuser = await start("superuser", marketplace(withDatabase(testPgUrl(), db.name)));
  t.equal(superuser.code, 1);
  t.match(superuser.stderr, /resolver\.prisma: the role \S+ is, or may become, a superuser or role creator/);
  const writes = await start("writer", marketplace(urlAs(writer)));
  t.equal(writes.code, 1);
  t.match(writes.stderr, new RegExp(`the role ${writer} may write public\\.order`));
  // Ways to write that a table-level check alone would miss.
  const columnWriter = await db.addRole("gerbang_colwriter");
  await owner.query(`GRANT USAGE ON SCHEMA public TO ${q(columnWriter)}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${q(columnWriter)}; GRANT UPDATE (status) ON "order" TO ${q(columnWriter)}`);
  const columns = await start("columns", marketplace(urlAs(columnWriter)));
  t.match(columns.stderr, new RegExp(`the role ${columnWriter} may write public\\.order`), "a column-level UPDATE grant");
  const member = await db.addRole("gerbang_member");
  await owner.query(`ALTER ROLE ${q(member)} NOINHERIT; GRANT ${q(writer)} TO ${q(member)}; GRANT USAGE ON SCHEMA public TO ${q(member)}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${q(member)}`);
  const membership = await start("member", marketplace(urlAs(member)));
  t.match(membership.stderr, new RegExp(`the role ${member} may write public\\.order \\(as ${writer}\\)`), "a member (NOINHERIT) of a role that may write: SET ROLE needs no inheritance");
  const creator = await db.addRole("gerbang_creator");
  await owner.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${q(creator)}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${q(creator)}`);
  const creates = await start("creator", marketplace(urlAs(creator)));
  t.match(creates.stderr, new RegExp(`the role ${creator} may create objects in schema public`));
  const optionsUrl = new URL(urlAs(reader));
  optionsUrl.searchParams.set("options", "-c search_path=public");
  const options = await start("options", marketplace(optionsUrl.toString()));
  t.match(options.stderr, /connections are not read-only \(default_transaction_read_only is off\)/, "a URL whose options replace the read-only setting");
  for (const run of [columns, membership, creates, options]) t.equal(run.code, 1);
  const model = await start("model", marketplace(urlAs(reader), { subjects: { Order: { model: "Purchase", attributes: ["buyerId"] } } }));
  t.match(model.stderr, /subjects\.Order: the client has no model Purchase/);
  const attribute = await start("attribute", marketplace(urlAs(reader), { subjects: { Order: { model: "Order", attributes: ["buyerId", "colour"] } } }));
  t.match(attribute.stderr, /subjects\.Order: Order cannot be read by id with attributes buyerId, colour/);
  const idField = await start("id", marketplace(urlAs(reader), { subjects: { Order: { model: "Order", id: "buyerId", attributes: ["region"] } } }));
  t.match(idField.stderr, /subjects\.Order: Order cannot be read by buyerId/, "an id that is not unique is refused (one indexed query by id)");
  for (const run of [superuser, writes, model, attribute, idField]) {
    t.equal(run.code, 1);
    t.notMatch(run.stderr, PASSWORD, "the password is never printed");
    t.notMatch(run.stderr, /\n\s+at /, "no stack trace");
  }
});
