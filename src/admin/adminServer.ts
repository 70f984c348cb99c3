import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { selfHolder } from "../db/embeddedLock.ts";
import Fastify, { type FastifyInstance } from "fastify";
import Value from "#typebox/value";
import { isOperationName, OPERATIONS, runOperation, type OperatorServices } from "./operations.ts";
import { OperationError } from "./operationError.ts";
import { writeAdminEndpoint, type AdminEndpoint } from "./adminEndpointFile.ts";

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

/**
 * The operator's endpoint of a running gateway: loopback only, on its own port (never the public
 * listener), authenticated by a random token that only the file `<dataDir>/admin.json` (0600) holds.
 * `gerbang users|keys|policy` use it when this gateway holds the embedded database.
 */
export async function startAdminServer(services: OperatorServices, options: { dataDir: string; database: string; log: (msg: string) => void }): Promise<AdminServer> {
  const token = randomBytes(32).toString("base64url");
  const expected = digest(token);
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  let host = "";

  app.addHook("onRequest", async (request, reply) => {
    // A browser page can reach loopback; it cannot read the token, and carries an Origin we refuse.
    const given = /^Bearer (\S+)$/.exec(request.headers.authorization ?? "")?.[1];
    // Host too: a DNS-rebound name pointing at loopback never matches.
    if (request.headers.origin !== undefined || request.headers.host !== host || given === undefined || !timingSafeEqual(digest(given), expected)) {
      return reply.code(401).send({ error: { code: "UNAUTHENTICATED", message: "the admin endpoint takes the token in admin.json" } });
    }
  });
  app.post<{ Params: { name: string } }>("/operations/:name", async (request, reply) => {
    const { name } = request.params;
    if (!isOperationName(name)) return reply.code(404).send({ error: { code: "UNKNOWN_OPERATION", message: `no operation ${name}` } });
    const operation = OPERATIONS[name];
    const input: unknown = request.body ?? {};
    if (!Value.Check(operation.input, input)) {
      const first = [...Value.Errors(operation.input, input)][0];
      return reply.code(400).send({ error: { code: "BAD_INPUT", message: `${name}: ${first?.instancePath || "/"} ${first?.message ?? "invalid"}` } });
    }
    try {
      // Value.Check above proved the input matches this operation's schema.
      const result: unknown = await runOperation(services, name, input as never);
      options.log(`admin: ${name} done`);
      return { result };
    } catch (error) {
      if (error instanceof OperationError) return reply.code(422).send({ error: { code: "REFUSED", message: error.message } });
      options.log(`admin: ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      return reply.code(500).send({ error: { code: "INTERNAL_ERROR", message: `${name} failed in the gateway; see its log` } });
    }
  });

  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  host = `127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
  const url = `http://${host}`;
  const endpoint: AdminEndpoint = { url, token, database: options.database, holder: selfHolder("serve") };
  const remove = writeAdminEndpoint(options.dataDir, endpoint);
  // Every exit path, not only a drained stop: a crashed gateway's file must not outlive it.
  process.once("exit", remove);
  return {
    url,
    close: async () => {
      process.off("exit", remove);
      remove();
      await app.close();
    },
  };
}
