import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const GERBANG_BIN = fileURLToPath(new URL("../../src/cli/gerbang.js", import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningProcess {
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then resolves with the exit code (SIGKILL after 10 s). */
  stop(): Promise<number | null>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  readyUrl: string;
  timeoutMs?: number;
  nodeArgs?: string[];
  cwd?: string;
  /** How many characters of output to keep, the latest (default all; a long bench logs gigabytes). */
  keepOutput?: number;
}

/** A process and its descendants (Linux /proc): a pool's workers hold the listening socket, not the primary. */
function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    const p = all[i] as number;
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${task}/children`, "utf8").trim();
        if (children !== "") all.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

/**
 * Whether the port's listening socket belongs to the process (or its workers), or null where /proc
 * cannot say. Ports are chosen free before a process binds them: a parallel test may take one
 * meanwhile, and its process would answer our readiness check while ours exits with EADDRINUSE.
 */
export function listensOn(pid: number, port: number): boolean | null {
  const inodes = new Set<string>();
  try {
    for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        // local_address is hex ip:port, state 0A is LISTEN, the inode is the tenth field.
        if (f[3] === "0A" && Number.parseInt(f[1]?.split(":")[1] ?? "", 16) === port && f[9] !== undefined) inodes.add(`socket:[${f[9]}]`);
      }
    }
  } catch {
    return null;
  }
  for (const p of processTree(pid)) {
    try {
      for (const fd of readdirSync(`/proc/${p}/fd`)) {
        try {
          if (inodes.has(readlinkSync(`/proc/${p}/fd/${fd}`))) return true;
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/** Runs `gerbang <args>` as a real process and waits until `readyUrl` answers 200. */
export async function startGerbang(args: string[], options: StartOptions): Promise<RunningProcess> {
  return startNodeScript(GERBANG_BIN, args, options);
}

/** Runs `node <script> <args>` (this Node) and waits until `readyUrl` answers 200. */
export async function startNodeScript(script: string, args: string[], options: StartOptions): Promise<RunningProcess> {
  const label = script === GERBANG_BIN ? "gerbang" : script;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], {
    env: { ...process.env, ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = options.keepOutput ?? Infinity;
  const append = (d: Buffer): void => {
    output += d.toString();
    if (output.length > 2 * keep) output = output.slice(-keep);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let stopping = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => {
      // A process that dies while a test still uses it says why, in the test's output.
      if (!stopping && ready) process.stderr.write(`# ${label} ${args.slice(0, 1).join(" ")} (pid ${child.pid ?? "?"}) exited unexpectedly (${code ?? signal}); its last output:\n${output.slice(-4000)}\n`);
      resolve(code);
    }),
  );
  let ready = false;
  const stop = async (): Promise<number | null> => {
    stopping = true;
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${label} ${args.join(" ")} exited with ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(options.readyUrl, { signal: AbortSignal.timeout(1000) });
      // Ready only if the answer came from this process, not from another test's that took the port.
      if (response.status === 200 && listensOn(child.pid ?? 0, Number(new URL(options.readyUrl).port)) !== false) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${label} ${args.join(" ")} not ready in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  ready = true;
  return { child, output: () => output, stop };
}

/** Runs `gerbang <args>` to completion. */
export async function runGerbang(args: string[], env: NodeJS.ProcessEnv = {}, options: { cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [GERBANG_BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], ...(options.cwd === undefined ? {} : { cwd: options.cwd }) });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  return { code, stdout, stderr };
}
