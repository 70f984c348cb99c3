import { mkdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadConfig } from "../config/loadConfig.ts";
import { startGateway } from "../runtime/startGateway.ts";
import { startAdminServer, type AdminServer } from "../admin/adminServer.ts";
import { databaseIdentity } from "../admin/adminEndpointFile.ts";
import { DEMO_USERS } from "../demo/demoUsers.ts";
import { writePrivateFile } from "../runtime/privateFile.ts";

/** How often a gateway started by npm checks that npm still runs (npm does not pass every signal on). */
const PARENT_CHECK_MS = 500;

export async function serveCommand(flags: { config?: string; exitWithParent?: boolean }): Promise<number> {
  const config = loadConfig(flags.config === undefined ? {} : { file: flags.config });
  // SIGHUP's default action ends the process without draining: handled from the first moment, so a
  // reload sent while the gateway is still starting (it is reading the policy folder then anyway)
  // never kills it; once it serves, a reload re-reads the folder.
  let reload: (() => void) | null = null;
  process.on("SIGHUP", () => {
    if (reload === null) process.stderr.write("SIGHUP while starting: the policy folder is being read now; send it again to reload later\n");
    else reload();
  });
  const gateway = await startGateway(config);
  const dataDir = resolve(config.dataDir);
  const log = (msg: string): void => gateway.app.log.info(msg);

  let admin: AdminServer | null = null;
  try {
    admin = await startAdminServer(gateway.operator, { dataDir, database: databaseIdentity(config.database.url, resolve(config.database.embeddedDir)), log });
  } catch (error) {
    gateway.app.log.error({ err: (error as Error).message }, "admin endpoint not started; CLI commands on the embedded database will be refused");
  }
  const pidFile = join(dataDir, "gerbang.pid");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if ((statSync(dataDir).mode & 0o022) !== 0) gateway.app.log.warn({ dataDir }, "the data folder is writable by others; it holds the secret, the signing key and the admin endpoint: chmod 700 it");
  writePrivateFile(pidFile, `${process.pid}\n`);
  const removePidFile = (): void => {
    try {
      if (readFileSync(pidFile, "utf8").trim() === String(process.pid)) unlinkSync(pidFile);
    } catch {
      // already gone
    }
  };
  process.once("exit", removePidFile);

  if (gateway.demo !== null) process.stdout.write(tryItText(config.server.publicUrl ?? `http://localhost:${config.server.port}`, config.demo.seedUsers ?? config.demo.upstream));

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
        done();
      });
    };
    reload = (): void => {
      if (!config.policy.reloadOnSignal) gateway.app.log.info("SIGHUP ignored (policy.reloadOnSignal is false)");
      else gateway.reloadPolicy().catch((error: unknown) => gateway.app.log.error({ err: (error as Error).message }, "policy reload failed"));
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
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
