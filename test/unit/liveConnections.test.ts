// The registry of open WebSockets and streams: its per-principal and per-address counts, which
// connections a revocation concerns, and that a connection whose check fails (or cannot be made) is closed.
import t from "tap";
import fc from "fast-check";
import { LiveConnections, principalKey, type LiveConnection } from "../../src/live/liveConnections.ts";
import { closeReason, sendableCloseCode } from "../../src/live/websocketRelay.ts";
import { ANONYMOUS, type Principal } from "../../src/auth/principal.ts";
import type { UpstreamConfig } from "../../src/config/schema.ts";

const upstream = { name: "u", prefix: "/api", url: "http://127.0.0.1:1" } as unknown as UpstreamConfig;
const user = (id: string, roles: string[] = ["user"]): Principal => ({ userId: id, roles, authMethod: "session", attributes: {} });
const keyOf = (id: string, owner: string): Principal => ({ userId: owner, roles: ["partner"], authMethod: "api-key", attributes: {}, key: { id, tier: "t", scopes: [] } });

function connection(principal: Principal, address: string, kind: LiveConnection["kind"] = "websocket"): LiveConnection & { closedWith: Array<[string, number | undefined]> } {
  const closedWith: Array<[string, number | undefined]> = [];
  return { kind, principal, credential: undefined, method: "GET", path: "/api/x", upstream, address, closedWith, close: (reason, code) => void closedWith.push([reason, code]) };
}

t.test("counts WebSockets per principal and address; streams are not counted; removal happens once", async (t) => {
  const live = new LiveConnections(async () => null, () => undefined);
  const alice = user("alice");
  const removeA = live.add(connection(alice, "10.0.0.1"));
  live.add(connection(alice, "10.0.0.2"));
  live.add(connection(alice, "10.0.0.1", "stream"));
  live.add(connection(ANONYMOUS, "10.0.0.1"));
  t.same(live.counts(alice, "10.0.0.1"), { principal: 2, address: 2 });
  t.same(live.counts(ANONYMOUS, "10.0.0.9"), { principal: 0, address: 0 }, "anonymous has no principal count");
  removeA();
  removeA();
  t.same(live.counts(alice, "10.0.0.1"), { principal: 1, address: 1 }, "removed once, however often called");
  t.equal(live.size, 3);
  t.equal(principalKey(keyOf("k1", "alice")), "key:k1", "a key counts by itself, not with its owner's sessions");
});

t.test("a revocation rechecks only what it concerns and closes what fails, or what cannot be checked", async (t) => {
  const failing = new Set<string>();
  let broken = false;
  const live = new LiveConnections(async (c) => {
    if (broken) throw new Error("database away");
    return failing.has(c.address) ? "credentials revoked" : null;
  }, () => undefined);
  const a = connection(user("alice"), "a");
  const b = connection(user("bob"), "b");
  const k = connection(keyOf("k1", "carol"), "k");
  for (const c of [a, b, k]) live.add(c);
  failing.add("a").add("b").add("k");
  t.equal(await live.revoke({ kind: "user", id: "alice" }), 1, "a user's revocation: that user's connections only");
  t.same(a.closedWith, [["credentials revoked", undefined]]);
  t.same(b.closedWith, [], "bob untouched");
  t.equal(await live.revoke({ kind: "key", id: "k1" }), 1);
  t.equal(await live.revoke({ kind: "user", id: "carol" }), 1, "a user's change reaches their keys too");
  failing.clear();
  t.equal(await live.revoke({ kind: "all" }), 0, "a check that passes closes nothing");
  broken = true;
  t.equal(await live.revoke({ kind: "all" }), 3, "a check that cannot be made closes (fail safe)");
  live.closeAll("stopping");
  t.same(b.closedWith.at(-1), ["stopping", 1001], "closing all says going away");
});

t.test("a connection authenticated before a revocation it missed is checked as soon as it is registered", async (t) => {
  const checked: string[] = [];
  const live = new LiveConnections(async (c) => {
    checked.push(c.address);
    return "credentials revoked";
  }, () => undefined);
  const since = live.generation;
  await live.revoke({ kind: "user", id: "someone" });
  const late = connection(user("alice"), "late");
  live.add(late, since);
  const current = connection(user("bob"), "current");
  live.add(current, live.generation);
  await new Promise((r) => setImmediate(r));
  t.same(checked, ["late"], "only the one that could have missed it");
  t.same(late.closedWith, [["credentials revoked", undefined]]);
});

t.test("close codes and reasons: only sendable codes, reasons within 123 bytes", async (t) => {
  for (const code of [1000, 1001, 1008, 1009, 1011, 3000, 4999]) t.ok(sendableCloseCode(code), `${code} may be sent`);
  for (const code of [999, 1004, 1005, 1006, 1015, 2000, 5000]) t.notOk(sendableCloseCode(code), `${code} may not`);
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 200 }), (text) => {
      const reason = closeReason(text);
      return Buffer.byteLength(reason) <= 123 && text.startsWith(reason) && (Buffer.byteLength(text) > 123 || reason === text);
    }),
  );
});
