import { serveCommand } from "./serveCommand.ts";
import { migrateCommand } from "./migrateCommand.ts";
import { usersCommand } from "./usersCommand.ts";
import { policyCommand } from "./policyCommand.ts";
import { keysCommand } from "./keysCommand.ts";
import { main as demoUpstreamMain } from "../demo/upstreamMain.ts";
import { CliError } from "./cliError.ts";

const USAGE = `usage: gerbang <command>

  serve [--config <file>]                      run the gateway (no config: embedded demo)
  migrate [--config <file>]                    apply database migrations
  users create --email <e> --password <p> --role <admin|user|sales|partner> [--name <n>] [--attr key=value]...
  keys create --owner <email> --name <n> --tier <t> --scopes <a,b> [--expires-in 30d]
                                               issue an API key; the key alone is the last line
  keys list [--owner <email>] [--json]         list keys (never the keys themselves)
  keys revoke <id>                             revoke a key on every instance
  keys rotate <id> [--grace 24h]               issue a successor; the old key works until the grace ends
  policy validate [dir]                        validate a policy version (or every version in a folder) and run its tests
  demo-upstream [--port <p>] [--jwks-url <u>]  run the demo marketplace upstream

Environment: PORT, DATABASE_URL, REDIS_URL, GERBANG_SECRET, SMTP_URL override the config file.`;

/** Returns the process exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await serveCommand(rest);
      case "migrate":
        return await migrateCommand(rest);
      case "users":
        return await usersCommand(rest);
      case "keys":
        return await keysCommand(rest);
      case "policy":
        return await policyCommand(rest);
      case "demo-upstream":
        await demoUpstreamMain(rest);
        return 0;
      case undefined:
      case "help":
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new CliError(`unknown command ${command}`);
    }
  } catch (error) {
    // Messages only: a stack trace is for developers, and may carry connection strings.
    process.stderr.write(`gerbang: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof CliError) process.stderr.write(`\n${USAGE}\n`);
    return error instanceof CliError ? 2 : 1;
  }
}
