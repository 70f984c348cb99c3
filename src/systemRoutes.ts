import type { FastifyInstance } from "fastify";
import { GerbangError, errorBody } from "./errors/catalogue.ts";
import type { AssertionSigner } from "./identity/assertionSigner.ts";

export interface ReadinessCheck {
  name: string;
  /** false: failing degrades the gateway (status "degraded", still 200) instead of making it not ready. Default true. */
  critical?: boolean;
  /** Resolves when healthy; the rejection message is logged, never returned. */
  check(): Promise<void>;
  /** What an operator should know beyond ok/failing (e.g. the credential cache's mode), under `details.<name>`. */
  describe?: () => unknown;
}

const CHECK_TIMEOUT_MS = 2000;

/** /healthz (the process is alive), /readyz (its dependencies answer), the JWKS for upstreams. */
export async function systemRoutes(app: FastifyInstance, options: { signer: AssertionSigner; checks: readonly ReadinessCheck[] }): Promise<void> {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (request, reply) => {
    const results = await Promise.all(
      options.checks.map(async ({ name, check, critical }) => {
        try {
          await Promise.race([check(), new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), CHECK_TIMEOUT_MS).unref())]);
          return [name, "ok", critical !== false] as const;
        } catch (error) {
          request.log.warn({ check: name, err: (error as Error).message }, "readiness check failed");
          return [name, "failing", critical !== false] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results.map(([name, s]) => [name, s]));
    const described = options.checks.filter((c) => c.describe !== undefined);
    const details = described.length === 0 ? {} : { details: Object.fromEntries(described.map((c) => [c.name, c.describe?.()])) };
    if (results.every(([, s]) => s === "ok")) return { status: "ready", checks, ...details };
    if (results.every(([, s, isCritical]) => s === "ok" || !isCritical)) return { status: "degraded", checks, ...details };
    return reply.code(503).header("cache-control", "no-store").send({ ...errorBody(new GerbangError("NOT_READY"), request.id), checks, ...details });
  });

  app.get("/.well-known/jwks.json", async (_request, reply) => {
    void reply.header("cache-control", "public, max-age=300");
    return options.signer.jwks;
  });
}
