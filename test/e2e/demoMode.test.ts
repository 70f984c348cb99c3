// The newcomer's path: `gerbang serve` with no configuration runs the embedded database, the demo
// upstream and the seeded users, and the printed curl lines show allow and deny decisions.
import t from "tap";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GERBANG_BIN, freePort } from "../helpers/processes.ts";

const cwd = mkdtempSync(join(tmpdir(), "gerbang-demo-"));
t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
const port = await freePort();
const url = `http://localhost:${port}`;
const child = spawn(process.execPath, [GERBANG_BIN, "serve"], {
  cwd,
  env: { ...process.env, PORT: String(port), DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" },
  stdio: ["ignore", "pipe", "pipe"],
});
let stdout = "";
child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
child.stderr.on("data", () => undefined);
const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
t.teardown(async () => {
  if (child.exitCode === null) child.kill("SIGKILL");
});

// Up to 60 s: on a loaded 2-core machine PGlite, migrations and seeding take a while.
for (let i = 0; i < 600 && !stdout.includes("Stop with Ctrl-C."); i++) await new Promise((r) => setTimeout(r, 100));

t.test("prints how to try it, and the printed requests behave as described", async (t) => {
  t.match(stdout, `Gerbang is ready at ${url}`);
  t.match(stdout, "demo-user-password");
  t.equal((await fetch(`${url}/api/products`)).status, 200, "anyone may list products");
  t.equal((await fetch(`${url}/api/inventory`)).status, 401, "inventory needs a session");

  const signIn = await fetch(`${url}/api/auth/sign-in/email`, {
    method: "POST",
    // Node's fetch sends Sec-Fetch-Mode like a browser, so it must name its origin like one.
    headers: { "content-type": "application/json", origin: url },
    body: JSON.stringify({ email: "user@demo.gerbang.dev", password: "demo-user-password" }),
  });
  t.equal(signIn.status, 200);
  const token = signIn.headers.get("set-auth-token") ?? "";
  const auth = { authorization: `Bearer ${token}` };
  t.equal((await fetch(`${url}/api/orders/ord_1`, { headers: auth })).status, 200, "the user's own order");
  t.equal((await fetch(`${url}/api/orders/ord_2`, { headers: auth })).status, 403, "someone else's order");
  t.equal((await fetch(`${url}/api/inventory`, { headers: auth })).status, 403, "sales and admin only");
  const patch = await fetch(`${url}/api/orders/ord_1`, { method: "PATCH", headers: { ...auth, "content-type": "application/json" }, body: '{"status":"delivered"}' });
  t.equal(patch.status, 403);
  t.match(await patch.json(), { error: { code: "FORBIDDEN", reason: "FIELD_NOT_PERMITTED" } });
});

t.test("the printed shell lines work as printed: sign-in sets TOKEN, the next lines use it", async (t) => {
  const lines = stdout.split("\n").map((l) => l.trim());
  const signInUser = lines.find((l) => l.startsWith("TOKEN=$(") && l.includes("user@demo.gerbang.dev"));
  const ownOrder = lines.find((l) => l.includes("/api/orders/ord_1 -H"));
  const othersOrder = lines.find((l) => l.includes("/api/orders/ord_2"));
  if (signInUser === undefined || ownOrder === undefined || othersOrder === undefined) return t.fail(`banner lines missing:\n${stdout}`);
  const status = (line: string): string => `${line.replace(/\s+#.*$/, "")} -o /dev/null -w '%{http_code}\\n'`;
  const script = [signInUser.replace(/\s+#.*$/, ""), 'test -n "$TOKEN" || echo "no token"', status(ownOrder), status(othersOrder)].join("\n");
  const run = spawnSync("bash", ["-c", script], { encoding: "utf8" });
  t.equal(run.stdout.trim().split("\n").join(" "), "200 403", run.stderr);
});

t.test("SIGTERM stops it cleanly", async (t) => {
  child.kill("SIGTERM");
  t.equal(await exited, 0);
});
