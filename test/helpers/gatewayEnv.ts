import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePort, startGerbang, type RunningProcess } from "./processes.ts";
import { createTestDatabase, type TestDatabase } from "./testDatabase.ts";

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  body: unknown;
}

export interface SignedIn {
  token: string;
  cookie: string;
  userId: string;
}

export interface GatewayEnv {
  url: string;
  /** Every gateway instance's URL (the first is `url`); they share database, secret and signing key. */
  urls: string[];
  gateways: RunningProcess[];
  /** The config file of the first instance, for CLI commands. */
  configFile: string;
  upstreamUrl: string;
  databaseUrl: string | null;
  gateway: RunningProcess;
  upstream: RunningProcess;
  /** Everything the upstream received on /api since the last clearReceived(). */
  received(): Promise<ReceivedRequest[]>;
  clearReceived(): Promise<void>;
  signIn(email: string, password: string): Promise<SignedIn>;
  close(): Promise<void>;
}

export interface GatewayEnvOptions {
  /** Use a throwaway PostgreSQL database (true) or the embedded one in a temp folder (false). */
  postgres: boolean;
  config?: Record<string, unknown>;
  /** Merged into the `server` section. */
  serverConfig?: Record<string, unknown>;
  /** Gateway processes in front of the same upstream, database and Redis (default 1). */
  instances?: number;
  /** More arguments for the demo upstream process (e.g. `--database-url`). */
  upstreamArgs?: string[];
  /** Runs once the demo upstream is up, before any gateway starts; gets the throwaway database's URL. */
  beforeGateways?: (databaseUrl: string | null) => Promise<void>;
  /** The `database` section for the throwaway database's URL (default `{ url }`), e.g. through a pooler. */
  databaseConfig?: (databaseUrl: string) => Record<string, unknown>;
  /** The demo upstream's `resolver` entry in the gateways' config (e.g. a Prisma resolver). */
  upstreamResolver?: Record<string, unknown>;
  /** More `upstreams` entries beside the demo upstream's (which owns `/api`), e.g. a test's own server for a longer prefix. */
  extraUpstreams?: Array<Record<string, unknown>>;
  /** More arguments for `gerbang serve` (e.g. `--workers 2`). */
  serveArgs?: string[];
  /** Merged into one instance's config over `config` (e.g. its own policy folder). */
  instanceConfig?: (index: number) => Record<string, unknown>;
}

const generous = (): { max: number; windowMs: number } => ({ max: 1_000_000, windowMs: 60000 });
export const GENEROUS_LIMITS = {
  tiers: { "partner-basic": generous(), "partner-pro": generous() },
  session: generous(),
  anonymous: generous(),
  auth: Object.fromEntries(["signIn", "passwordReset", "otp"].map((name) => [name, { perAccount: generous(), perAddress: generous() }])),
};

/** A real upstream process and a real gateway process in front of it, with the demo users seeded. */
export async function startGatewayEnv(options: GatewayEnvOptions): Promise<GatewayEnv> {
  const dir = mkdtempSync(join(tmpdir(), "gerbang-e2e-"));
  let db: TestDatabase | null = null;
  const cleanups: Array<() => Promise<unknown>> = [async () => rmSync(dir, { recursive: true, force: true })];
  const close = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    if (options.postgres) {
      db = await createTestDatabase();
      const created = db;
      cleanups.push(() => created.drop());
    }
    const ports = [await freePort(), await freePort()];
    for (let i = 1; i < (options.instances ?? 1); i++) ports.push(await freePort());
    const [gatewayPort, upstreamPort, ...extraPorts] = ports as [number, number, ...number[]];
    const url = `http://127.0.0.1:${gatewayPort}`;
    const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
    const upstream = await startGerbang(["demo-upstream", "--port", String(upstreamPort), "--jwks-url", `${url}/.well-known/jwks.json`, ...(options.upstreamArgs ?? [])], {
      readyUrl: `${upstreamUrl}/__demo/received`,
    });
    cleanups.push(() => upstream.stop());
    await options.beforeGateways?.(db?.url ?? null);

    // Tests share one Redis: every environment gets its own key prefix and invalidation channel.
    const redisPrefix = `gerbang-test-${randomUUID().slice(0, 8)}:`;
    const { redis: redisConfig, ...config } = options.config ?? {};
    const configFor = (port: number, first: boolean): Record<string, unknown> => ({
      // No load shedding on event-loop delay: a CPU-starved CI machine must not turn a test's 200 into a 503.
      // test/faults/resourceExhaustion.test.ts turns shedding on where it is the subject.
      server: { host: "127.0.0.1", port, publicUrl: `http://127.0.0.1:${port}`, overload: { maxEventLoopDelayMs: 0 }, ...options.serverConfig },
      database: db === null ? { embeddedDir: join(dir, "pglite") } : (options.databaseConfig?.(db.url) ?? { url: db.url }),
      // Shared: the secret and the signing key are generated once into dataDir by the first instance.
      dataDir: join(dir, "data"),
      demo: { seedUsers: first },
      logLevel: "warn",
      audit: { flushIntervalMs: 50 },
      upstreams: [{ name: "marketplace", prefix: "/api", url: upstreamUrl, timeoutMs: 5000, ...(options.upstreamResolver === undefined ? {} : { resolver: options.upstreamResolver }) }, ...(options.extraUpstreams ?? [])],
      // Tests send far more than a minute's worth from one address; rate-limit tests set their own limits.
      rateLimit: GENEROUS_LIMITS,
      redis: { keyPrefix: redisPrefix, ...(redisConfig as Record<string, unknown> | undefined) },
      ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)),
      // Admins here sign in with a password only; test/e2e/twoFactor.test.ts tests the default (admin needs a second factor).
      auth: { twoFactor: { requiredForRoles: [] }, ...(config.auth as Record<string, unknown> | undefined) },
    });
    const env: NodeJS.ProcessEnv = { DATABASE_URL: "", REDIS_URL: "", PORT: "", GERBANG_SECRET: "" };
    const gateways: RunningProcess[] = [];
    const urls: string[] = [];
    let configFile = "";
    for (const [i, port] of [gatewayPort, ...extraPorts].entries()) {
      const file = join(dir, `gerbang-${i}.yaml`);
      writeFileSync(file, stringify({ ...configFor(port, i === 0), ...options.instanceConfig?.(i) }));
      if (i === 0) configFile = file;
      const instanceUrl = `http://127.0.0.1:${port}`;
      const gateway = await startGerbang(["serve", "--config", file, ...(options.serveArgs ?? [])], { env, readyUrl: `${instanceUrl}/readyz` });
      cleanups.push(() => gateway.stop());
      gateways.push(gateway);
      urls.push(instanceUrl);
    }
    const gateway = gateways[0] as RunningProcess;
    // Seeding runs right after listen; sign-in proves it finished.
    const received = async (): Promise<ReceivedRequest[]> => {
      const all = (await (await fetch(`${upstreamUrl}/__demo/received`)).json()) as ReceivedRequest[];
      return all.filter((r) => r.url.startsWith("/api"));
    };
    const clearReceived = async (): Promise<void> => {
      await fetch(`${upstreamUrl}/__demo/received`, { method: "DELETE" });
    };
    const signIn = async (email: string, password: string): Promise<SignedIn> => {
      for (let attempt = 0; ; attempt++) {
        const response = await fetch(`${url}/api/auth/sign-in/email`, {
          method: "POST",
          // Node's fetch sends Sec-Fetch-Mode, so Better Auth checks the Origin as it would a browser's.
          headers: { "content-type": "application/json", origin: url },
          body: JSON.stringify({ email, password }),
        });
        if (response.status === 200) {
          const token = response.headers.get("set-auth-token") ?? "";
          const cookie = (response.headers.getSetCookie()[0] ?? "").split(";")[0] ?? "";
          const body = (await response.json()) as { user?: { id?: string } };
          return { token, cookie, userId: body.user?.id ?? "" };
        }
        if (attempt > 50) throw new Error(`sign-in of ${email} failed with ${response.status}: ${await response.text()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    return { url, urls, gateways, configFile, upstreamUrl, databaseUrl: db?.url ?? null, gateway, upstream, received, clearReceived, signIn, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The `x-gerbang-assertion` the upstream received for one `GET /api/products` through the gateway. */
export async function assertionThrough(env: GatewayEnv, headers: Record<string, string>): Promise<string> {
  await env.clearReceived();
  const response = await fetch(`${env.url}/api/products`, { headers });
  if (response.status !== 200) throw new Error(`GET /api/products: ${response.status} ${await response.text()}`);
  const token = (await env.received())[0]?.headers["x-gerbang-assertion"];
  if (typeof token !== "string") throw new Error("the upstream saw no assertion");
  return token;
}
