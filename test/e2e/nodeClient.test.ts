// docs/clients.md: a server-side client signs in through the gateway with Better Auth's own client,
// exactly as the page shows; without an Origin it gets the gateway's explanation, not a bare 403.
import t from "tap";
import { createAuthClient } from "better-auth/client";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startGerbang } from "../helpers/processes.ts";

// The demo, as the page's examples assume: its users and orders.
const cwd = mkdtempSync(join(tmpdir(), "gerbang-client-"));
t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
const port = await freePort();
const gateway = `http://localhost:${port}`;
const demo = await startGerbang(["serve"], { cwd, env: { PORT: String(port), DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" }, readyUrl: `${gateway}/healthz` });
t.teardown(() => demo.stop());
for (let i = 0; i < 600 && !demo.output().includes("Stop with Ctrl-C."); i++) await new Promise((r) => setTimeout(r, 100));

t.test("createAuthClient in Node with the documented Origin and bearer options", async (t) => {
  let token = "";
  const client = createAuthClient({
    baseURL: `${gateway}/api/auth`,
    fetchOptions: {
      headers: { origin: gateway },
      auth: { type: "Bearer", token: () => token },
      onSuccess: (ctx) => {
        const issued = ctx.response.headers.get("set-auth-token");
        if (issued) token = issued;
      },
    },
  });
  const { error } = await client.signIn.email({ email: "user@demo.gerbang.dev", password: "demo-user-password" });
  t.equal(error, null);
  t.not(token, "", "the token came back in set-auth-token");
  const session = await client.getSession();
  t.equal(session.data?.user.email, "user@demo.gerbang.dev", "getSession carries the bearer token");
  const order = await fetch(`${gateway}/api/orders/ord_1`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(order.status, 200, "the same token authorizes API calls");
  await client.signOut();
  const after = await fetch(`${gateway}/api/orders/ord_1`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(after.status, 401, "signed out");
});

t.test("without Origin, Node's fetch is told what is missing; a wrong one is named", async (t) => {
  const bare = createAuthClient({ baseURL: `${gateway}/api/auth` });
  const { error } = await bare.signIn.email({ email: "user@demo.gerbang.dev", password: "demo-user-password" });
  t.equal(error?.status, 403);
  const missing = await fetch(`${gateway}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "user@demo.gerbang.dev", password: "demo-user-password" }) });
  const missingBody = (await missing.json()) as { error: { reason: string; message: string } };
  t.equal(missingBody.error.reason, "ORIGIN_MISSING");
  t.match(missingBody.error.message, /needs an Origin header/);
  const wrong = await fetch(`${gateway}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: "https://evil.example" }, body: "{}" });
  const wrongBody = (await wrong.json()) as { error: { reason: string; message: string } };
  t.equal(wrongBody.error.reason, "ORIGIN_UNTRUSTED");
  t.equal(wrongBody.error.message, "The origin https://evil.example is not trusted.", "the seen origin, never the trusted list");
  t.notMatch(wrongBody.error.message, gateway);
});
