// The embedded database's lock: one holder at a time, a dead holder's lock is stale, and a takeover
// of a stale lock is won by exactly one of several processes racing for it.
import t from "tap";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { acquireEmbeddedLock, commandName, EmbeddedDatabaseBusy, lockFileOf } from "../../src/db/embeddedLock.ts";

const dir = mkdtempSync(join(tmpdir(), "gerbang-lock-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, "pglite");
const refusal = async (work: Promise<unknown>): Promise<unknown> => work.then(() => null, (error: unknown) => error);
const deadPid = (): number => Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
const writeLock = (holder: Record<string, unknown>): void => writeFileSync(lockFileOf(db), JSON.stringify({ hostname: hostname(), startTicks: null, since: "x", command: "gerbang serve", ...holder }));

t.test("a second opener is refused with the holder's pid until the first releases", async (t) => {
  const release = await acquireEmbeddedLock(db, { command: "serve" });
  const error = await refusal(acquireEmbeddedLock(db, { command: "users list" }));
  t.ok(error instanceof EmbeddedDatabaseBusy);
  t.match((error as Error).message, /in use by process \d+ \(gerbang serve/);
  release();
  t.notOk(existsSync(lockFileOf(db)));
  (await acquireEmbeddedLock(db))();
});

t.test("the lock names the command, never its flags (a password may be among them)", async (t) => {
  t.equal(commandName(["users", "create", "--email", "a@b.c", "--password", "hunter2-secret"]), "users create");
  t.equal(commandName(["keys", "revoke", "key_1"]), "keys revoke");
  const release = await acquireEmbeddedLock(db, { command: commandName(["users", "create", "--password", "hunter2-secret"]) });
  t.notMatch(readFileSync(lockFileOf(db), "utf8"), /hunter2/);
  release();
});

t.test("a held lock is waited for while a CLI command holds it, never while a gateway does", async (t) => {
  const release = await acquireEmbeddedLock(db, { command: "users list" });
  setTimeout(release, 300);
  const started = Date.now();
  (await acquireEmbeddedLock(db, { command: "serve", waitForCommandsMs: 5000 }))();
  t.ok(Date.now() - started >= 250, "waited for the command to finish");
  const gateway = await acquireEmbeddedLock(db, { command: "serve" });
  t.ok((await refusal(acquireEmbeddedLock(db, { command: "users list", waitForCommandsMs: 5000 }))) instanceof EmbeddedDatabaseBusy, "a gateway's hold is refused at once");
  gateway();
});

t.test("a lock whose process is gone, is a zombie's, or holds no lock at all is taken over", async (t) => {
  writeLock({ pid: deadPid() });
  (await acquireEmbeddedLock(db))();
  writeFileSync(lockFileOf(db), "");
  (await acquireEmbeddedLock(db))();
  // A process killed and not reaped by its parent (Node reaps its own children, so the parent is Python):
  // kill(pid, 0) still succeeds, /proc says Z.
  const parent = spawn("python3", ["-c", "import os,time\np=os.fork()\nif p==0:\n  time.sleep(30)\nelse:\n  os.kill(p,9); print(p, flush=True); time.sleep(10)"], { stdio: ["ignore", "pipe", "ignore"] });
  t.teardown(() => void parent.kill("SIGKILL"));
  const pid = await new Promise<number>((resolve) => {
    parent.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    parent.once("error", () => resolve(0));
  });
  const state = (): string => {
    try {
      return readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      return "";
    }
  };
  for (let i = 0; i < 50 && !/\) Z /.test(state()); i++) await new Promise((r) => setTimeout(r, 20));
  if (pid > 0 && /\) Z /.test(state())) {
    writeLock({ pid });
    (await acquireEmbeddedLock(db))();
  } else t.comment("no zombie could be made here (python3 missing?): that case is not checked");
  t.pass();
});

t.test("a reused pid (same pid, another start time) is not the holder", async (t) => {
  writeLock({ pid: process.pid, startTicks: "1" });
  (await acquireEmbeddedLock(db))();
  t.pass();
});

t.test("a holder on another machine (shared folder) is never presumed dead, and the message says how to clear it", async (t) => {
  writeLock({ pid: 999999, hostname: `not-${hostname()}` });
  const error = await refusal(acquireEmbeddedLock(db));
  t.ok(error instanceof EmbeddedDatabaseBusy);
  t.match((error as Error).message, `on host not-${hostname()} (if nothing runs there, delete ${lockFileOf(db)})`);
  rmSync(lockFileOf(db));
});

t.test("several processes racing for one stale lock: exactly one wins at a time", async (t) => {
  const script = fileURLToPath(new URL("../helpers/lockContender.ts", import.meta.url));
  for (let round = 0; round < 5; round++) {
    writeLock({ pid: deadPid() });
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        new Promise<string>((resolve) => {
          const child = spawn(process.execPath, ["--import", "tsx", script, db], { stdio: ["ignore", "pipe", "inherit"] });
          let out = "";
          child.stdout.on("data", (d: Buffer) => (out += d.toString()));
          child.once("exit", () => resolve(out.trim()));
        }),
      ),
    );
    // Each winner holds the lock for 300 ms and records the interval it held it; none may overlap.
    const held = results.filter((r) => r.startsWith("held")).map((r) => r.split(" ").slice(1).map(Number) as [number, number]).sort((a, b) => a[0] - b[0]);
    t.ok(held.length >= 1, `round ${round}: somebody took the stale lock (${results.join(", ")})`);
    for (let i = 1; i < held.length; i++) t.ok((held[i]?.[0] ?? 0) >= (held[i - 1]?.[1] ?? 0), `round ${round}: holds do not overlap`);
  }
});
