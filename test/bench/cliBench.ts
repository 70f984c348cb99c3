// `npm run bench:cli`: how long an operator waits for the CLI. Medians of several runs each of
// `gerbang help`, a read and a write on PostgreSQL (the CLI's own connection), and the same on the
// embedded database through a running demo gateway. Targets (issue 13): help < 200 ms, a database
// command < 1 s. A measurement, not a test: nothing here fails on a slow machine.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort, GERBANG_BIN, startGerbang } from "../helpers/processes.ts";
import { createTestDatabase } from "../helpers/testDatabase.ts";

const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 5);

async function timed(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const started = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    // As an operator runs it: the file itself, so its #! line's flags apply (as in `npm run gerbang`).
    const child = spawn(GERBANG_BIN, args, { cwd, env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}`, ...env }, stdio: "ignore" });
    child.once("exit", resolve);
  });
  if (code !== 0) throw new Error(`gerbang ${args.join(" ")} exited with ${code}`);
  return performance.now() - started;
}

async function median(label: string, args: (i: number) => string[], env: NodeJS.ProcessEnv, cwd: string, targetMs: number): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(await timed(args(i), env, cwd));
  const m = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)] ?? 0;
  process.stdout.write(`${label.padEnd(44)} median ${m.toFixed(0).padStart(5)} ms  (target < ${targetMs} ms${m < targetMs ? "" : ", MISSED"})\n`);
}

const cwd = mkdtempSync(join(tmpdir(), "gerbang-clibench-"));
const db = await createTestDatabase();
const pgEnv = { DATABASE_URL: db.url, REDIS_URL: "", GERBANG_SECRET: "x".repeat(32) };
process.stdout.write(`node ${process.version}, ${RUNS} runs each\n`);
try {
  await median("gerbang help", () => ["help"], {}, cwd, 200);
  await median("users create (PostgreSQL)", (i) => ["users", "create", "--email", `bench${i}@example.com`, "--password", "bench-user-password", "--role", "user"], pgEnv, cwd, 1000);
  await median("users list (PostgreSQL)", () => ["users", "list"], pgEnv, cwd, 1000);

  const port = await freePort();
  const demoEnv = { PORT: String(port), DATABASE_URL: "", REDIS_URL: "", GERBANG_SECRET: "" };
  const demo = await startGerbang(["serve"], { env: demoEnv, cwd, readyUrl: `http://127.0.0.1:${port}/healthz` });
  try {
    await median("users create (embedded, via the gateway)", (i) => ["users", "create", "--email", `demo${i}@example.com`, "--password", "bench-user-password", "--role", "user"], demoEnv, cwd, 1000);
    await median("keys list (embedded, via the gateway)", () => ["keys", "list"], demoEnv, cwd, 1000);
  } finally {
    await demo.stop();
  }
  await median("users list (embedded, opened by the CLI)", () => ["users", "list"], demoEnv, cwd, 1000);
} finally {
  await db.drop();
  rmSync(cwd, { recursive: true, force: true });
}
