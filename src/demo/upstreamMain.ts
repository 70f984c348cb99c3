// Command-line entry for the demo marketplace upstream, e.g.
//   node --import tsx src/demo/upstreamMain.ts --port 4100 --jwks-url http://127.0.0.1:4000/.well-known/jwks.json
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startDemoUpstream } from "./upstream.ts";
import type { DemoUpstreamOptions } from "./upstream.ts";

/** `argv` is the argument list without the node binary and script path. */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      "jwks-url": { type: "string" },
      audience: { type: "string" },
      "database-url": { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });

  const options: DemoUpstreamOptions = {};
  if (values.host !== undefined) options.host = values.host;
  if (values.port !== undefined) options.port = parsePort(values.port);
  if (values["jwks-url"] !== undefined) options.jwksUrl = values["jwks-url"];
  if (values.audience !== undefined) options.audience = values.audience;
  if (values["database-url"] !== undefined) options.databaseUrl = values["database-url"];

  const upstream = await startDemoUpstream(options);
  process.stdout.write(`demo upstream listening on ${upstream.url}\n`);

  let closing = false;
  const shutdown = (): void => {
    // A second signal while closing must not start a second close.
    if (closing) return;
    closing = true;
    upstream.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`demo upstream: error while closing: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

function parsePort(raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isInteger(port) || port > 65535) {
    throw new Error(`--port must be an integer between 0 and 65535, got "${raw}"`);
  }
  return port;
}

// Run only when executed directly, so tests and other code can import `main` without side effects.
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`demo upstream: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
