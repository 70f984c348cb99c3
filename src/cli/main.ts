import { serveCommand } from "./serveCommand.ts";
import { migrateCommand } from "./migrateCommand.ts";
import { usersCommand } from "./usersCommand.ts";
import { policyCommand } from "./policyCommand.ts";
import { main as demoUpstreamMain } from "../demo/upstreamMain.ts";
import { CliError } from "./cliError.ts";

const USAGE = `usage: gerbang <command>

  serve [--config <file>]                      run the gateway (no config: embedded demo)
  migrate [--config <file>]                    apply database migrations
  users create --email <e> --password <p> --role <admin|user|sales> [--name <n>] [--attr key=value]...
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
