import { withDatabase } from "../../src/db/adminUrl.ts";
import { testPgUrl } from "./services.ts";
import { createTestDatabase } from "./testDatabase.ts";
import { startTcpRelay } from "./tcpRelay.ts";

export interface RelayedDatabase {
  /** The throwaway database's URL through the relay: what the gateway is configured with. */
  url: string;
  /** Drops every connection and refuses new ones: PostgreSQL is gone, as far as the gateway can tell. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** A throwaway PostgreSQL database reached through a TCP relay the test can cut, for outage tests. */
export async function startRelayedDatabase(): Promise<RelayedDatabase> {
  const admin = new URL(testPgUrl());
  const relay = await startTcpRelay({ host: admin.hostname, port: Number(admin.port || 5432) });
  const db = await createTestDatabase().catch(async (error: unknown) => {
    await relay.close();
    throw error;
  });
  const url = new URL(withDatabase(testPgUrl(), db.name));
  url.port = String(relay.port);
  url.hostname = "127.0.0.1";
  return {
    url: url.toString(),
    cut: () => relay.cut(),
    restore: () => relay.restore(),
    close: async () => {
      await relay.close();
      await db.drop();
    },
  };
}
