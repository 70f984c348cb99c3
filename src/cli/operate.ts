import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadConfig } from "../config/loadConfig.ts";
import type { GerbangConfig } from "../config/schema.ts";
import { databaseIdentity, findAdminEndpoint, type AdminEndpoint } from "../admin/adminEndpointFile.ts";
import { callAdmin, GatewayUnreachable } from "../admin/adminClient.ts";
import type { OperationInput, OperationName, OperationOutput } from "../admin/operations.ts";
import { OperationError } from "../admin/operationError.ts";
import { EmbeddedDatabaseBusy } from "../db/embeddedLock.ts";

/** How long a command waits for a gateway that holds the database but is still starting (migrations, seeding). */
const startingGatewayWaitMs = (): number => Number(process.env.GERBANG_GATEWAY_WAIT_MS ?? 30_000) || 30_000;

export function operatorConfig(file: string | undefined): GerbangConfig {
  return loadConfig(file === undefined ? {} : { file });
}

/** The live endpoint of a gateway serving this configuration's database from this data folder, if any. */
function gatewayFor(config: GerbangConfig): AdminEndpoint | null {
  const dataDir = resolve(config.dataDir);
  const found = findAdminEndpoint(dataDir);
  if (found.kind === "untrusted") throw new OperationError(`not using the running gateway: ${found.reason}`);
  return found.kind === "found" && found.endpoint.database === databaseIdentity(config.database.url, resolve(config.database.embeddedDir)) ? found.endpoint : null;
}

/**
 * Carries out an operation: on the embedded database (which one process at a time may open) through
 * the running gateway that holds it, otherwise on the CLI's own connections. Never reports success
 * for work not done, and never does again what a gateway may already have done.
 */
export async function operate<N extends OperationName>(config: GerbangConfig, name: N, input: OperationInput<N>): Promise<OperationOutput<N>> {
  // On PostgreSQL the CLI works beside any number of gateways (changes reach them over Redis); only
  // the embedded database, and a reload, need the gateway itself.
  const embedded = config.database.url === undefined || config.database.url === "";
  const embeddedDir = resolve(config.database.embeddedDir);
  const viaGateway = embedded || name === "policy.reload";
  const endpoint = viaGateway ? gatewayFor(config) : null;
  if (endpoint !== null) {
    try {
      return await callAdmin(endpoint, name, input);
    } catch (error) {
      // A gateway that died without removing its file: fall back to the database (which then is free).
      if (!(error instanceof GatewayUnreachable)) throw error;
    }
  }
  if (name === "policy.reload") throw new OperationError(`no running gateway found for this configuration (no live ${resolve(config.dataDir)}/admin.json); start one with gerbang serve`);
  // A command in the wrong folder must not quietly create a new, empty database and report success.
  if (embedded && !existsSync(embeddedDir)) {
    throw new OperationError(`no embedded database at ${embeddedDir}: run this where gerbang serve runs (or with its --config), or set database.url`);
  }
  const [{ openOperatorContext }, { runOperation }] = await Promise.all([import("./operatorContext.ts"), import("../admin/operations.ts")]);
  let ctx: Awaited<ReturnType<typeof openOperatorContext>>;
  try {
    ctx = await openOperatorContext(config);
  } catch (error) {
    if (!(error instanceof EmbeddedDatabaseBusy)) throw error;
    if (!error.holder.command.startsWith("gerbang serve")) throw new OperationError(`${error.message}; another command is using it, retry when it is done`);
    // A gateway holds it: it publishes its endpoint once it is ready.
    const deadline = Date.now() + startingGatewayWaitMs();
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const started = gatewayFor(config);
      if (started !== null) return callAdmin(started, name, input);
    }
    throw new OperationError(`${error.message}; it publishes no admin endpoint for this configuration (same --config and working folder?), so nothing was changed`);
  }
  try {
    return await runOperation(ctx.services, name, input);
  } finally {
    await ctx.close();
  }
}
