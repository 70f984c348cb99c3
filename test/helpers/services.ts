import net from "node:net";
import pg from "pg";

export type ServiceKind = "postgres" | "redis";

const PROBE_TIMEOUT_MS = 1_500;

export const testPgUrl = (): string =>
  process.env.GERBANG_TEST_PG_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const testRedisUrl = (): string => process.env.GERBANG_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

const LABEL: Record<ServiceKind, string> = { postgres: "PostgreSQL", redis: "Redis" };

function hostPort(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || "localhost"}:${parsed.port || defaultPort}`;
  } catch {
    return "(unparseable URL)";
  }
}

async function probePostgres(url: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  // A failed connect may still emit 'error' later; unhandled, that would crash the test process.
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
  } finally {
    await client.end().catch(() => undefined);
  }
}

function probeRedis(url: string): Promise<void> {
  const parsed = new URL(url);
  return new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 6379) });
    let reply = "";
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error("timed out")), PROBE_TIMEOUT_MS);
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (!reply.includes("\r\n")) return;
      finish(reply.startsWith("+PONG") ? undefined : new Error(`unexpected reply ${JSON.stringify(reply.trim())}`));
    });
    socket.on("error", (error) => finish(error));
    socket.on("close", () => finish(new Error("connection closed")));
  });
}

interface ProbeResult {
  /** The skip reason tap prints, e.g. "needs PostgreSQL at 127.0.0.1:5432". */
  reason: string;
  detail: string;
}

// Probed once per process: many test files ask, and a down service would otherwise cost each one
// the full timeout.
const probes = new Map<ServiceKind, Promise<ProbeResult | false>>();

function probe(kind: ServiceKind): Promise<ProbeResult | false> {
  let pending = probes.get(kind);
  if (!pending) {
    const url = kind === "postgres" ? testPgUrl() : testRedisUrl();
    const reason = `needs ${LABEL[kind]} at ${hostPort(url, kind === "postgres" ? 5432 : 6379)}`;
    pending = (async () => (kind === "postgres" ? probePostgres(url) : probeRedis(url)))().then(
      () => false as const,
      (error: unknown) => ({ reason, detail: error instanceof Error ? error.message : String(error) }),
    );
    probes.set(kind, pending);
  }
  return pending;
}

/**
 * `false` when the service answers, otherwise a skip reason for tap's `{ skip }`. In CI (or with
 * GERBANG_REQUIRE_SERVICES=1) a missing service is an error instead, so tests cannot pass by skipping.
 */
export async function serviceGate(kind: ServiceKind): Promise<false | string> {
  const result = await probe(kind);
  if (result === false) return false;
  if (process.env.CI === "true" || process.env.GERBANG_REQUIRE_SERVICES === "1") {
    throw new Error(
      `${LABEL[kind]} is required in this environment (CI or GERBANG_REQUIRE_SERVICES=1) but the probe failed: ` +
        `${result.reason}: ${result.detail}`,
    );
  }
  return result.reason;
}
