// The embedded database's lock: one holder at a time, a dead holder's lock is stale.
import t from "tap";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { acquireEmbeddedLock, EmbeddedDatabaseBusy, lockFileOf } from "../../src/db/embeddedLock.ts";

const dir = mkdtempSync(join(tmpdir(), "gerbang-lock-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, "pglite");

t.test("a second opener is refused with the holder's pid until the first releases", async (t) => {
  const release = acquireEmbeddedLock(db, "serve");
  let refusal: unknown;
  try {
    acquireEmbeddedLock(db, "users list");
  } catch (error) {
    refusal = error;
  }
  t.ok(refusal instanceof EmbeddedDatabaseBusy);
  t.match((refusal as Error).message, /in use by process \d+ \(gerbang serve/);
  release();
  t.notOk(existsSync(lockFileOf(db)));
  acquireEmbeddedLock(db, "again")();
});

t.test("a lock whose process is gone, or that cannot be read, is taken over", async (t) => {
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
  writeFileSync(lockFileOf(db), JSON.stringify({ pid: Number(dead), hostname: hostname(), startTicks: null, since: "x", command: "gerbang serve" }));
  acquireEmbeddedLock(db)();
  writeFileSync(lockFileOf(db), "");
  acquireEmbeddedLock(db)();
  t.pass();
});

t.test("a reused pid (same pid, another start time) is not the holder", async (t) => {
  writeFileSync(lockFileOf(db), JSON.stringify({ pid: process.pid, hostname: hostname(), startTicks: "1", since: "x", command: "gerbang serve" }));
  acquireEmbeddedLock(db)();
  t.pass();
});

t.test("a holder on another machine (shared folder) is never presumed dead", async (t) => {
  writeFileSync(lockFileOf(db), JSON.stringify({ pid: 999999, hostname: `not-${hostname()}`, startTicks: null, since: "x", command: "gerbang serve" }));
  t.throws(() => acquireEmbeddedLock(db), EmbeddedDatabaseBusy);
  rmSync(lockFileOf(db));
});
