import { mkdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadConfig } from "../config/loadConfig.ts";
import { startGateway } from "../runtime/startGateway.ts";
import { startAdminServer, type AdminServer } from "../admin/adminServer.ts";
import { databaseIdentity } from "../admin/adminEndpointFile.ts";
import { DEMO_USERS } from "../demo/demoUsers.ts";
import { writePrivateFile } from "../runtime/privateFile.ts";
import cluster from "node:cluster";
import { CliError } from "./cliError.ts";
import { runWorkerPool, WORKER_LISTENING } from "../runtime/workerPool.ts";
import type { GerbangConfig } from "../config/schema.ts";

/** How often a gateway started by npm checks that npm still runs (npm does not pass every signal on). */
const PARENT_CHECK_MS = 500;

/** `--workers`: a whole number from 1 to 64. */
function workerCount(raw: string | undefined): number {
  if (raw === undefined) return 1;
  if (!/^\d{1,2}$/.test(raw) || Number(raw) < 1 || Number(raw) > 64) throw new CliError(`--workers takes a number from 1 to 64, got ${raw}`);
  return Number(raw);
}

/** Why several workers cannot serve this configuration, or null. */
function workersRefusal(config: GerbangConfig): string | null {
  if (config.database.url === undefined) return "--workers needs database.url (or DATABASE_URL): the embedded database may be opened by one process only";
  if (config.redis.url === undefined && config.redis.sentinel === undefined && config.redis.cluster === undefined) return "--workers needs redis.url (or REDIS_URL), redis.sentinel or redis.cluster: workers keep their caches coherent (revocations, bans, policy activations) and share rate-limit counters through Redis, as separate hosts do";
  return null;
}

export async function serveCommand(flags: { config?: string; exitWithParent?: boolean; workers?: string }): Promise<number> {
  const config = loadConfig(flags.config === undefined ? {} : { file: flags.config });
  const workers = workerCount(flags.workers);
  if (workers > 1 && cluster.isPrimary) {
    const refusal = workersRefusal(config);
    if (refusal !== null) throw new CliError(refusal);
    const dataDir = resolve(config.dataDir);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const pidFile = join(dataDir, "gerbang.pid");
    writePrivateFile(pidFile, `${process.pid}\n`);
    const log = (msg: string): void => void process.stderr.write(`${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: `primary: ${msg}` })}\n`);
    log(`starting ${workers} workers`);
    if (flags.exitWithParent === true) {
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid !== parent) process.emit("SIGTERM", "SIGTERM");
      }, PARENT_CHECK_MS).unref();
    }
    const code = await runWorkerPool({ workers, log, shutdownGraceMs: config.server.shutdownGraceMs });
    try {
      if (readFileSync(pidFile, "utf8").trim() === String(process.pid)) unlinkSync(pidFile);
    } catch {
      // already gone
    }
    return code;
  }
  // A worker of `--workers N`: the primary owns the pid file and the signals that reach the pool.
  const slot = cluster.isWorker ? Number(process.env.GERBANG_WORKER ?? "0") : 0;
  const first = slot <= 1;
  // SIGHUP's default action ends the process without draining: handled from the first moment, so a
  // reload sent while the gateway is still starting (it is reading the policy folder then anyway)
  // never kills it; once it serves, a reload re-reads the folder.
  let reload: (() => void) | null = null;
  process.on("SIGHUP", () => {
    if (reload === null) process.stderr.write("SIGHUP while starting: the policy folder is being read now; send it again to reload later\n");
    else reload();
  });
  const gateway = await startGateway(config);
  // From the moment the gateway serves (it answers /readyz already), not after the admin endpoint:
  // a reload sent in between would otherwise be lost with a "while starting" notice.
  reload = (): void => {
    if (!config.policy.reloadOnSignal) gateway.app.log.info("SIGHUP ignored (policy.reloadOnSignal is false)");
    else gateway.reloadPolicy().catch((error: unknown) => gateway.app.log.error({ err: (error as Error).message }, "policy reload failed"));
  };
  const dataDir = resolve(config.dataDir);
  const log = (msg: string): void => gateway.app.log.info(msg);

  let admin: AdminServer | null = null;
  if (cluster.isWorker) process.send?.(WORKER_LISTENING);
  if (first) try {
    admin = await startAdminServer(gateway.operator, { dataDir, database: databaseIdentity(config.database.url, resolve(config.database.embeddedDir)), log });
  } catch (error) {
    gateway.app.log.error({ err: (error as Error).message }, "admin endpoint not started; CLI commands on the embedded database will be refused");
  }
  const pidFile = join(dataDir, "gerbang.pid");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if ((statSync(dataDir).mode & 0o022) !== 0) gateway.app.log.warn({ dataDir }, "the data folder is writable by others; it holds the secret, the signing key and the admin endpoint: chmod 700 it");
  if (!cluster.isWorker) writePrivateFile(pidFile, `${process.pid}\n`);
  const removePidFile = (): void => {
    try {
      if (readFileSync(pidFile, "utf8").trim() === String(process.pid)) unlinkSync(pidFile);
    } catch {
      // already gone
    }
  };
  process.once("exit", removePidFile);

  if (gateway.demo !== null && first) process.stdout.write(tryItText(config.server.publicUrl ?? `http://localhost:${config.server.port}`, config.demo.seedUsers ?? config.demo.upstream));

  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (reason: string): void => {
      if (stopping) return;
      stopping = true;
      gateway.app.log.info({ reason }, "shutting down");
      const force = setTimeout(() => {
        gateway.app.log.error("shutdown grace period over; exiting");
        process.exit(1);
      }, config.server.shutdownGraceMs);
      force.unref();
      void Promise.allSettled([admin?.close(), gateway.close()]).then(() => {
        removePidFile();
        // The channel to the primary would keep a drained worker alive.
        if (cluster.isWorker && process.connected) process.disconnect();
        done();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    // A worker whose primary is gone (killed outright) must not serve on unsupervised.
    if (cluster.isWorker) process.once("disconnect", () => stop("the primary process exited"));
    process.once("SIGINT", () => stop("SIGINT"));
    // Under `npm start` (which passes --exit-with-parent), a signal sent to npm's pid may end npm
    // without reaching us: leave with it.
    if (flags.exitWithParent === true) {
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid !== parent) stop("parent process (npm) exited");
      }, PARENT_CHECK_MS).unref();
    }
  });
  return 0;
}

function tryItText(url: string, seeded: boolean): string {
  const [admin, user, , sales] = DEMO_USERS;
  const signIn = (email: string, password: string): string =>
    `TOKEN=$(curl -s -D - -o /dev/null ${url}/api/auth/sign-in/email -H 'content-type: application/json' -d '{"email":"${email}","password":"${password}"}' | sed -n 's/^set-auth-token: *//ip' | tr -d '\\r')`;
  return `
Gerbang is ready at ${url} in front of the demo marketplace.

  Anyone may list products:        curl -s ${url}/api/products
  Inventory needs a session (401): curl -s ${url}/api/inventory
${seeded ? `
  Sign in as one of these (each line sets TOKEN to the session token from the set-auth-token header):
    ${signIn(user.email, user.password)}     # user
    ${signIn(sales.email, sales.password)}   # sales
    ${signIn(admin.email, admin.password)}   # admin

  Then:
    curl -s ${url}/api/orders/ord_1 -H "authorization: Bearer $TOKEN"      # the user's own order: allowed
    curl -s ${url}/api/orders/ord_2 -H "authorization: Bearer $TOKEN"      # someone else's: 403
    curl -s ${url}/api/inventory -H "authorization: Bearer $TOKEN"         # sales and admin only
    curl -s -X PATCH ${url}/api/orders/ord_1 -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"status":"delivered"}'   # user: field not permitted

  From a second terminal, the CLI works against this running gateway:
    npm run gerbang -- users list
    npm run gerbang -- policy reload
` : ""}
Stop with Ctrl-C.
`;
}
