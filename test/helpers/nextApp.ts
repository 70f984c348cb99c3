// The Next.js app of test/fixtures/nextApp, built as a marketplace team would build it, with
// `gerbang/upstream` installed into its node_modules the way the package ships it (JavaScript and
// .d.ts compiled from src/upstream, the package's own `exports`). Installing and building happen
// once per checkout (once per CI run) and again only when their inputs change.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { startNodeScript, type RunningProcess } from "./processes.ts";

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, "../..");
export const NEXT_APP = join(repo, "test/fixtures/nextApp");
const NEXT_BIN = join(NEXT_APP, "node_modules/next/dist/bin/next");

function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? filesUnder(path) : [path];
    });
}

function digestOf(files: string[]): string {
  const hash = createHash("sha256");
  for (const file of files) hash.update(file).update("\0").update(readFileSync(file)).update("\0");
  return hash.digest("hex");
}

/** Runs `step` unless `stamp` already holds `digest`; writes the stamp only after it succeeded. */
async function unlessDone(stamp: string, digest: string, step: () => Promise<void>): Promise<void> {
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === digest) return;
  await step();
  writeFileSync(stamp, digest);
}

export async function prepareNextApp(): Promise<void> {
  const lock = join(NEXT_APP, "package-lock.json");
  const options = { cwd: NEXT_APP, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } };
  await unlessDone(join(NEXT_APP, "node_modules/.gerbang-installed"), digestOf([lock]), async () => {
    await run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], options);
  });
  // The helper as a service receives it: compiled output and the package's manifest, nothing else.
  const installed = join(NEXT_APP, "node_modules/gerbang");
  rmSync(installed, { recursive: true, force: true });
  mkdirSync(installed, { recursive: true });
  await run(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-p", join(repo, "tsconfig.upstream.json"), "--outDir", join(installed, "dist/upstream")], options);
  const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { name: string; version: string; type: string; exports: unknown };
  writeFileSync(join(installed, "package.json"), JSON.stringify({ name: manifest.name, version: manifest.version, type: manifest.type, exports: manifest.exports }, null, 2));
  const inputs = [lock, join(NEXT_APP, "next.config.mjs"), ...filesUnder(join(NEXT_APP, "app")), ...filesUnder(join(NEXT_APP, "lib")), ...filesUnder(join(installed, "dist"))];
  mkdirSync(join(NEXT_APP, ".next"), { recursive: true });
  await unlessDone(join(NEXT_APP, ".next/.gerbang-built"), digestOf(inputs), async () => {
    await run(process.execPath, [NEXT_BIN, "build"], options);
  });
}

/** `next start` on a loopback port; ready when the app's health route answers. */
export async function startNextApp(port: number, env: NodeJS.ProcessEnv): Promise<RunningProcess> {
  return startNodeScript(NEXT_BIN, ["start", "--port", String(port), "--hostname", "127.0.0.1"], {
    cwd: NEXT_APP,
    env: { NEXT_TELEMETRY_DISABLED: "1", ...env },
    readyUrl: `http://127.0.0.1:${port}/api/health`,
  });
}
