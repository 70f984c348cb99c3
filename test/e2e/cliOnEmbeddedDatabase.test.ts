// The CLI beside a running demo gateway (issue: two processes opened one PGlite folder and writes
// were lost). Every command either takes effect in the running gateway, through its loopback admin
// endpoint, or is refused with exit 1 and a message; the embedded database is never opened twice.
import t from "tap";
import { chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, runGerbang, startGerbang, type RunningProcess } from "../helpers/processes.ts";

const cwd = mkdtempSync(join(tmpdir(), "gerbang-cli-"));
t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const env = { PORT: String(port), DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" };
const cli = (...args: string[]): ReturnType<typeof runGerbang> => runGerbang(args, env, { cwd });
const dataDir = join(cwd, ".gerbang");

async function startDemo(): Promise<RunningProcess> {
  const gateway = await startGerbang(["serve"], { env, cwd, readyUrl: `${url}/healthz` });
  // Demo users are seeded after listen, sales last: the banner is printed once they exist.
  for (let i = 0; i < 600 && !gateway.output().includes("Stop with Ctrl-C."); i++) await new Promise((r) => setTimeout(r, 100));
  return gateway;
}
const signIn = (email: string, password: string): Promise<Response> =>
  fetch(`${url}/api/auth/sign-in/email`, { method: "POST", headers: { "content-type": "application/json", origin: url }, body: JSON.stringify({ email, password }) });
const withKey = (key: string): Promise<Response> => fetch(`${url}/api/products`, { headers: { "x-api-key": key } });

let gateway = await startDemo();
t.teardown(() => gateway.stop());

t.test("the gateway holds the embedded database's lock and publishes its admin endpoint, readable only by the user", async (t) => {
  const lock = JSON.parse(readFileSync(join(dataDir, "pglite.lock"), "utf8")) as { pid: number };
  t.equal(lock.pid, gateway.child.pid, "the lock names the gateway's pid");
  t.equal(readFileSync(join(dataDir, "gerbang.pid"), "utf8").trim(), String(gateway.child.pid));
  t.equal(statSync(join(dataDir, "admin.json")).mode & 0o777, 0o600);
  const endpoint = JSON.parse(readFileSync(join(dataDir, "admin.json"), "utf8")) as { url: string; token: string };
  t.match(endpoint.url, /^http:\/\/127\.0\.0\.1:\d+$/, "loopback only");
  const call = (headers: Record<string, string>): Promise<Response> =>
    fetch(`${endpoint.url}/operations/users.list`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}" });
  t.equal((await call({})).status, 401, "no token");
  t.equal((await call({ authorization: "Bearer wrong" })).status, 401, "wrong token");
  t.equal((await call({ authorization: `Bearer ${endpoint.token}`, origin: "https://evil.example" })).status, 401, "a browser page (Origin) is refused even with the token");
  t.equal((await call({ authorization: `Bearer ${endpoint.token}` })).status, 200);
  const bad = await fetch(`${endpoint.url}/operations/keys.revoke`, { method: "POST", headers: { authorization: `Bearer ${endpoint.token}`, "content-type": "application/json" }, body: '{"id":1}' });
  t.equal(bad.status, 400, "inputs are checked against the operation's schema");
  t.equal((await fetch(`${url}/operations/users.list`, { method: "POST" })).status === 200, false, "the public listener serves no admin operation");
});

let keyId = "";
let key = "";
t.test("users create, keys create and keys revoke take effect in the running gateway", async (t) => {
  const created = await cli("users", "create", "--email", "ops@acme.example", "--password", "acme-partner-password", "--role", "partner");
  t.equal(created.code, 0, created.stderr);
  t.match(created.stdout.trim(), /^[A-Za-z0-9]{16,}$/, "prints the id");
  t.equal((await signIn("ops@acme.example", "acme-partner-password")).status, 200, "the new user signs in at once");

  const issued = await cli("keys", "create", "--owner", "ops@acme.example", "--name", "catalog", "--tier", "partner-basic", "--scopes", "catalog:read", "--json");
  t.equal(issued.code, 0, issued.stderr);
  const lines = issued.stdout.trim().split("\n");
  keyId = (JSON.parse(lines[0] ?? "{}") as { id: string }).id;
  key = lines.at(-1) ?? "";
  t.equal((await withKey(key)).status, 200, "the new key works");

  const revoked = await cli("keys", "revoke", keyId);
  t.equal(revoked.code, 0, revoked.stderr);
  t.match(revoked.stdout, /^revoked /);
  const refusedAt = Date.now();
  let status = 0;
  while (Date.now() - refusedAt < 1000 && (status = (await withKey(key)).status) !== 401) await new Promise((r) => setTimeout(r, 50));
  t.equal(status, 401, "the revoked key is refused within 1 s");
});

t.test("users list/show, keys list and policy commands answer from the running gateway", async (t) => {
  const list = await cli("users", "list", "--json");
  t.equal(list.code, 0, list.stderr);
  const emails = (JSON.parse(list.stdout) as Array<{ email: string }>).map((u) => u.email);
  t.ok(emails.includes("ops@acme.example") && emails.includes("sales@demo.gerbang.dev"), "demo users and the new one");
  const show = await cli("users", "show", "ops@acme.example");
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, /ops@acme\.example\tpartner/);
  t.match(show.stdout, new RegExp(`key ${keyId}\\trevoked`));
  const keys = await cli("keys", "list", "--owner", "ops@acme.example");
  t.match(keys.stdout, new RegExp(`^${keyId}\\trevoked`, "m"));

  const unknown = await cli("keys", "list", "--owner", "nobody@acme.example");
  t.equal(unknown.code, 1);
  t.equal(unknown.stderr, "gerbang: no user with email nobody@acme.example\n", "one line, not the usage");
  t.equal(unknown.stdout, "");

  const reload = await cli("policy", "reload");
  t.equal(reload.code, 0, reload.stderr);
  t.match(reload.stdout, /^unchanged: \d{4}-\d{2}-\d{2} is active/);
  const ready = (await (await fetch(`${url}/readyz`)).json()) as { details: { policy: { version: string } } };
  t.match(reload.stdout, ready.details.policy.version, "/readyz names the active version");

  const status = await cli("policy", "status", "--json");
  t.equal(status.code, 0, status.stderr);
  t.match(JSON.parse(status.stdout), { active: { version: ready.details.policy.version }, instances: [{ pid: gateway.child.pid, state: "serving" }] }, "policy status from the gateway");

  const validate = await cli("policy", "validate", ready.details.policy.version);
  t.equal(validate.code, 0, `a version name is looked up under policy.dir: ${validate.stderr}`);
  t.match(validate.stdout, `${ready.details.policy.version}: valid`);
  const missing = await cli("policy", "validate", "1999-01-01");
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no policy version or folder 1999-01-01/);
});

t.test("what the gateway cannot do for the CLI is refused with exit 1, and nothing changes", async (t) => {
  const migrate = await cli("migrate");
  t.equal(migrate.code, 1);
  t.match(migrate.stderr, new RegExp(`in use by process ${gateway.child.pid}`));
  t.match(migrate.stderr, /stop it first/);

  // An endpoint file anyone may read could be swapped to send passwords elsewhere: refused.
  chmodSync(join(dataDir, "admin.json"), 0o644);
  const loose = await cli("users", "list");
  t.equal(loose.code, 1);
  t.match(loose.stderr, /must be 600/);
  chmodSync(join(dataDir, "admin.json"), 0o600);

  // A gateway that publishes no endpoint (an older version, or a failed start of it): after waiting
  // for it (GERBANG_GATEWAY_WAIT_MS, 30 s by default) refused, not written twice.
  renameSync(join(dataDir, "admin.json"), join(cwd, "admin.json.aside"));
  const blind = await runGerbang(["users", "create", "--email", "lost@acme.example", "--password", "lost-user-password", "--role", "user"], { ...env, GERBANG_GATEWAY_WAIT_MS: "1500" }, { cwd });
  t.equal(blind.code, 1);
  t.match(blind.stderr, /in use by process \d+/);
  t.match(blind.stderr, /nothing was changed/);
  t.equal(blind.stdout, "", "no id printed");
  renameSync(join(cwd, "admin.json.aside"), join(dataDir, "admin.json"));
  t.equal((await signIn("lost@acme.example", "lost-user-password")).status, 401);
  const users = await cli("users", "list", "--json");
  t.notOk(users.stdout.includes("lost@acme.example"), "the refused user does not exist");
});

t.test("after a stop the CLI opens the database itself; a restart sees everything intact", async (t) => {
  t.equal(await gateway.stop(), 0);
  t.notOk(existsSync(join(dataDir, "admin.json")), "endpoint file removed");
  t.notOk(existsSync(join(dataDir, "gerbang.pid")), "pid file removed");
  t.notOk(existsSync(join(dataDir, "pglite.lock")), "lock released");
  const offline = await cli("keys", "list", "--owner", "ops@acme.example");
  t.equal(offline.code, 0, offline.stderr);
  t.match(offline.stdout, new RegExp(`^${keyId}\\trevoked`, "m"));

  // A command run while the gateway starts: whichever takes the lock first, the other waits for it.
  const starting = startDemo();
  await new Promise((r) => setTimeout(r, 300));
  const meanwhile = await cli("users", "list");
  gateway = await starting;
  t.equal(meanwhile.code, 0, `a command during the start waits rather than failing: ${meanwhile.stderr}`);
  t.match(meanwhile.stdout, /ops@acme\.example/);
  t.equal((await signIn("ops@acme.example", "acme-partner-password")).status, 200);
  t.equal((await withKey(key)).status, 401, "still revoked");
  const keys = await cli("keys", "list", "--json");
  t.equal(keys.code, 0, keys.stderr);
  t.ok((JSON.parse(keys.stdout) as Array<{ id: string }>).some((k) => k.id === keyId));
});

t.test("a lock left by a killed gateway is stale: the next opener takes it over", async (t) => {
  gateway.child.kill("SIGKILL");
  await new Promise((r) => gateway.child.once("exit", r));
  t.ok(existsSync(join(dataDir, "pglite.lock")), "a SIGKILL leaves the lock behind");
  const users = await cli("users", "list");
  t.equal(users.code, 0, users.stderr);
  t.match(users.stdout, /ops@acme\.example/);
  t.notOk(existsSync(join(dataDir, "pglite.lock")), "released again after the command");
});

t.test("a command in a folder without the database refuses instead of creating an empty one", async (t) => {
  const elsewhere = mkdtempSync(join(tmpdir(), "gerbang-cli-elsewhere-"));
  t.teardown(() => rmSync(elsewhere, { recursive: true, force: true }));
  const run = await runGerbang(["users", "create", "--email", "x@acme.example", "--password", "x-long-password", "--role", "user"], env, { cwd: elsewhere });
  t.equal(run.code, 1);
  t.match(run.stderr, /no embedded database at .*pglite: run this where gerbang serve runs/);
  t.notOk(existsSync(join(elsewhere, ".gerbang", "pglite")), "nothing created");
});
