// The audit queue under a PostgreSQL outage (cut through a TCP relay, under load): events wait in
// memory and are all written once the database is back; when the queue is full, sampled allows are
// shed before any security event (a denial); beyond the bound, new security events are lost, counted
// in gerbang_audit_lost_total and logged, never silently; and the chain still verifies afterwards.
import t from "tap";
import pg from "pg";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { startRelayedDatabase } from "../helpers/relayedDatabase.ts";
import { runGerbang } from "../helpers/processes.ts";
import { eventually } from "../helpers/eventually.ts";

const skip = await serviceGate("postgres");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test("audit events through a PostgreSQL outage", { skip }, async (t) => {
  const relay = await startRelayedDatabase();
  t.teardown(() => relay.close());
  const BOUND = 200;
  const env = await startGatewayEnv({ postgres: false, config: { database: { url: relay.url }, auth: { sessionCacheTtlMs: 60000 }, audit: { flushIntervalMs: 50, maxBuffer: BOUND } } });
  t.teardown(() => env.close());
  const user = await env.signIn("user@demo.gerbang.dev", "demo-user-password");
  const denied = async (): Promise<string> => {
    const r = await fetch(`${env.url}/api/inventory`, { headers: { authorization: `Bearer ${user.token}` } });
    await r.arrayBuffer();
    t.equal(r.status, 403, "a cached session is still judged (and denied) while the database is away");
    return r.headers.get("x-request-id") ?? "";
  };
  const allowed = async (): Promise<number> => {
    const r = await fetch(`${env.url}/api/products`);
    await r.arrayBuffer();
    return r.status;
  };
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`${env.url}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? "NaN");
  };
  // A client of its own each time: the relay cuts every connection through it.
  const written = async (ids: string[]): Promise<number> => {
    const db = new pg.Client({ connectionString: relay.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM audit_event WHERE request_id = ANY($1)", [ids]);
      return Number(rows[0]?.n);
    } finally {
      await db.end();
    }
  };
  const drained = async (): Promise<void> => {
    for (let i = 0; i < 100 && (await metric("gerbang_audit_queue_depth")) > 0; i++) await sleep(100);
  };
  await denied(); // the session is now cached: it is judged without the database
  await drained();

  await t.test("a full queue sheds allows first and keeps every denial", async (t) => {
    await relay.cut();
    // The batch the writer was sending when the database went is linked into the chain and kept as it
    // is: here one denial, so that what follows shows the queue's own policy.
    const first = await denied();
    await sleep(300);
    // Allows fill the queue; denials then push them out. Concurrent, as real traffic is.
    const statuses = await Promise.all(Array.from({ length: 300 }, allowed));
    t.ok(statuses.every((s) => s === 200), "allowed requests are served while the database is away");
    const ids = [first, ...(await Promise.all(Array.from({ length: 150 }, denied)))];
    t.ok((await metric("gerbang_audit_queue_depth")) <= BOUND, "the queue stays within audit.maxBuffer");
    t.ok((await metric("gerbang_audit_shed_total")) >= 250, "allows were shed to make room");
    await relay.restore();
    await drained();
    t.equal(await written(ids), ids.length, "every denial made during the outage was written afterwards");
    t.equal(await metric("gerbang_audit_lost_total"), 0, "no security event was lost");
  });

  await t.test("beyond the bound, security events are lost visibly", async (t) => {
    await relay.cut();
    const ids: string[] = [];
    for (let i = 0; i < BOUND + 50; i++) ids.push(await denied());
    t.equal(await metric("gerbang_audit_lost_total"), 50, "the events past the bound are counted as lost");
    t.ok(await eventually(() => /audit: the queue is full of security events/.test(env.gateway.output())), "and logged");
    await relay.restore();
    await drained();
    t.equal(await written(ids), BOUND, "the ones within the bound were all written");
  });

  const verify = await runGerbang(["audit", "verify", "--config", env.configFile], { DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" });
  t.equal(verify.code, 0, `the chain is intact: lost events were never part of it\n${verify.stdout}${verify.stderr}`);
});
