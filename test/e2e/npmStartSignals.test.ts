// `npm start` puts npm in front of the gateway (issue: SIGHUP to npm's pid ended npm silently,
// SIGTERM to npm left the gateway orphaned). The gateway writes its own pid to <dataDir>/gerbang.pid,
// reloads on SIGHUP to that pid or `gerbang policy reload`, and leaves when npm does.
import t from "tap";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, runGerbang } from "../helpers/processes.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dir = mkdtempSync(join(tmpdir(), "gerbang-npm-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const until = async (what: () => boolean, ms: number): Promise<boolean> => {
  const deadline = Date.now() + ms;
  while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return what();
};

async function npmStart(name: string): Promise<{ npm: ChildProcess; gatewayPid: number; config: string; output: () => string }> {
  const port = await freePort();
  const dataDir = join(dir, name);
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, JSON.stringify({ server: { port }, dataDir, database: { embeddedDir: join(dataDir, "pglite") }, demo: { upstream: true, seedUsers: false } }));
  const npm = spawn("npm", ["start", "--silent", "--", "--config", config], { cwd: root, env: { ...process.env, DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "", PORT: "" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  npm.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  npm.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  t.teardown(() => {
    npm.kill("SIGKILL");
  });
  let gatewayPid = 0;
  await until(() => {
    try {
      gatewayPid = Number(readFileSync(join(dataDir, "gerbang.pid"), "utf8"));
    } catch {
      return false;
    }
    return gatewayPid > 0;
  }, 60_000);
  if (gatewayPid === 0) throw new Error(`no pid file:\n${output}`);
  t.teardown(() => {
    if (alive(gatewayPid)) process.kill(gatewayPid, "SIGKILL");
  });
  return { npm, gatewayPid, config, output: () => output };
}

for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"] as const) {
  t.test(`${signal} to npm's pid: the gateway drains and exits with it`, async (t) => {
    const run = await npmStart(signal.toLowerCase());
    t.not(run.gatewayPid, run.npm.pid, "the pid file names the gateway, not npm");
    t.ok(alive(run.gatewayPid));
    run.npm.kill(signal);
    t.ok(await until(() => !alive(run.gatewayPid), 15_000), `the gateway exited:\n${run.output()}`);
  });
}

t.test("reload without kill: `gerbang policy reload`, and SIGHUP to the pid in gerbang.pid", async (t) => {
  const run = await npmStart("reload");
  const reload = await runGerbang(["policy", "reload", "--config", run.config, "--json"]);
  t.equal(reload.code, 0, reload.stderr);
  t.match(JSON.parse(reload.stdout), { outcome: "unchanged" });
  process.kill(run.gatewayPid, "SIGHUP");
  t.ok(await until(() => run.output().includes("policy reload: unchanged"), 10_000), "SIGHUP to the gateway reloads");
  t.ok(alive(run.gatewayPid), "and does not stop it");
  run.npm.kill("SIGTERM");
  t.ok(await until(() => !alive(run.gatewayPid), 15_000));
  const none = await runGerbang(["policy", "reload", "--config", run.config]);
  t.equal(none.code, 1, "no running gateway: refused");
  t.match(none.stderr, /no running gateway found/);
});
