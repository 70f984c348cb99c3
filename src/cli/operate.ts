import { resolve } from "node:path";
import { loadConfig } from "../config/loadConfig.ts";
import type { GerbangConfig } from "../config/schema.ts";
import { databaseIdentity, findAdminEndpoint } from "../admin/adminEndpointFile.ts";
import { callAdmin, GatewayUnreachable } from "../admin/adminClient.ts";
import type { OperationInput, OperationName, OperationOutput } from "../admin/operations.ts";
import { EmbeddedDatabaseBusy } from "../db/embeddedLock.ts";

export function operatorConfig(file: string | undefined): GerbangConfig {
  return loadConfig(file === undefined ? {} : { file });
}

/**
 * Carries out an operation: on the embedded database (which one process at a time may open) through
 * the running gateway that holds it, otherwise on the CLI's own connections. Never reports success
 * for work not done.
 */
export async function operate<N extends OperationName>(config: GerbangConfig, name: N, input: OperationInput<N>): Promise<OperationOutput<N>> {
  const dataDir = resolve(config.dataDir);
  const embeddedDir = resolve(config.database.embeddedDir);
  const found = findAdminEndpoint(dataDir);
  if (found.kind === "untrusted") throw new Error(`not using the running gateway: ${found.reason}`);
  // On PostgreSQL the CLI works beside any number of gateways (changes reach them over Redis); only
  // the embedded database, and a reload, need the gateway itself.
  const embedded = config.database.url === undefined || config.database.url === "";
  if (found.kind === "found" && (embedded || name === "policy.reload") && found.endpoint.database === databaseIdentity(config.database.url, embeddedDir)) {
    try {
      return await callAdmin(found.endpoint, name, input);
    } catch (error) {
      // A gateway that died without removing its file: fall back to the database (which then is free).
      if (!(error instanceof GatewayUnreachable)) throw error;
    }
  }
  if (name === "policy.reload") {
    throw new Error(`no running gateway found for this configuration (no live ${dataDir}/admin.json); start one with gerbang serve`);
  }
  const [{ openOperatorContext }, { runOperation }] = await Promise.all([import("./operatorContext.ts"), import("../admin/operations.ts")]);
  let ctx: Awaited<ReturnType<typeof openOperatorContext>>;
  try {
    ctx = await openOperatorContext(config);
  } catch (error) {
    if (error instanceof EmbeddedDatabaseBusy) {
      throw new Error(
        `${error.message}.\n  That process publishes no admin endpoint for this configuration, so nothing was changed.\n` +
          `  Run the command with the same --config (and working folder) as that gateway, stop it first, or use PostgreSQL (database.url or DATABASE_URL) to run the CLI beside gateways.`,
      );
    }
    throw error;
  }
  try {
    return await runOperation(ctx.services, name, input);
  } finally {
    await ctx.close();
  }
}
