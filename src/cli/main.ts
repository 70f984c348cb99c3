import { Command, CommanderError, Option } from "commander";
import { CliError } from "./cliError.ts";
import type { ExplainFlags } from "./explainCommand.ts";
import type { AuditSearchFlags } from "./auditCommand.ts";

/**
 * The `gerbang` command, defined once: help, flag checks and shell completion all come from this
 * definition. Each action imports its module only when it runs, so `gerbang help` loads no gateway.
 */
export function buildProgram(setExitCode: (code: number) => void): Command {
  const program: Command = new Command("gerbang")
    .description("Policy-engine-driven authorization gateway")
    .exitOverride()
    .showSuggestionAfterError(true)
    .helpCommand("help [command]", "show help for a command")
    .addHelpText(
      "after",
      () =>
        `\nEvery command and its flags:\n${synopsis(program).map((l) => `  ${l}`).join("\n")}\n\n` +
        "Environment: PORT, DATABASE_URL, REDIS_URL, GERBANG_SECRET, SMTP_URL override the config file.\n" +
        "Without --config: the embedded demo (database in .gerbang/pglite, demo upstream and users).",
    );
  const config = (): Option => new Option("--config <file>", "config file (YAML or JSON); absent: the embedded demo");
  const json = (): Option => new Option("--json", "print JSON instead of text");
  const done = (code: number): void => setExitCode(code);

  program
    .command("serve")
    .description("run the gateway (no config: embedded demo)")
    .addOption(config())
    .option("--exit-with-parent", "drain and exit when the parent process ends (npm start passes it: npm does not pass every signal on)")
    .option("--workers <n>", "worker processes sharing the port (1-64, default 1); more than one needs database.url and redis.url or redis.sentinel")
    .action(async (o: { config?: string; exitWithParent?: boolean; workers?: string }) => done(await (await import("./serveCommand.ts")).serveCommand(o)));
  program
    .command("migrate")
    .description("apply database migrations")
    .addOption(config())
    .action(async (o: { config?: string }) => done(await (await import("./migrateCommand.ts")).migrateCommand(o)));

  const users = program.command("users").description("manage users (operators vouch for the address: users are created verified)");
  users
    .command("create")
    .description("create a verified user; prints the new id")
    .requiredOption("--email <email>", "sign-in email")
    .requiredOption("--password <password>", "initial password")
    .requiredOption("--role <roles>", "admin, user, sales or partner (comma-separated for several)")
    .option("--name <name>", "display name (default: the email's local part)")
    .option("--attr <key=value>", "attribute policies read, e.g. region=apac (repeatable)", (v: string, all: string[] = []) => [...all, v])
    .addOption(json())
    .addOption(config())
    .action(async (o: UsersCreateFlags) => done(await (await import("./usersCommand.ts")).usersCreate(o)));
  users
    .command("list")
    .description("list users, oldest first, a page at a time (the next page's --offset goes to stderr)")
    .option("--search <text>", "part of the email or name, any case")
    .option("--role <role>", "only users with this role")
    .option("--banned", "only banned users")
    .option("--limit <n>", "users per page (1-1000, default 100)")
    .option("--offset <n>", "users to skip")
    .addOption(json())
    .addOption(config())
    .action(async (o: UsersListFlags) => done(await (await import("./usersCommand.ts")).usersList(o)));
  users
    .command("set-role <email> <roles>")
    .description("replace a user's roles (comma-separated); every instance applies it at once")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, roles: string, o: CommonFlags) => done(await (await import("./usersCommand.ts")).usersSetRole(email, roles, o)));
  users
    .command("set-attr <email> <key=value...>")
    .description("set attributes policies read (e.g. region=eu; region= removes it); every instance applies it at once")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, pairs: string[], o: CommonFlags) => done(await (await import("./usersCommand.ts")).usersSetAttr(email, pairs, o)));
  users
    .command("ban <email>")
    .description("ban a user: sign-in refused, every session ended and their API keys refused, on every instance at once")
    .option("--reason <text>", "why (kept with the user and audited)")
    .option("--expires-in <duration>", "lift the ban after this long (e.g. 7d); default: until unbanned")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, o: UsersBanFlags) => done(await (await import("./usersCommand.ts")).usersBan(email, o)));
  users
    .command("unban <email>")
    .description("lift a ban (sessions ended by it stay ended)")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, o: CommonFlags) => done(await (await import("./usersCommand.ts")).usersUnban(email, o)));
  users
    .command("revoke-sessions <email>")
    .description("end every session of a user, on every instance at once")
    .option("--keys", "also revoke the user's API keys")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, o: UsersRevokeFlags) => done(await (await import("./usersCommand.ts")).usersRevokeSessions(email, o)));
  users
    .command("delete <email>")
    .description("delete an account: sign-in refused, sessions ended and API keys revoked everywhere at once; personal data purged after the grace period")
    .option("--grace-days <n>", "days until the purge (0-3650, default auth.erasureGraceDays)")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, o: UsersDeleteFlags) => done(await (await import("./usersCommand.ts")).usersDelete(email, o)));
  users
    .command("restore <email>")
    .description("undo a deletion during its grace period (ended sessions and revoked keys stay so)")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, o: CommonFlags) => done(await (await import("./usersCommand.ts")).usersRestore(email, o)));
  users
    .command("purge")
    .description("erase the personal data of every deleted user whose grace period is over (running gateways also do it hourly)")
    .option("--email <email>", "only this deleted user")
    .option("--now", "with --email: purge without waiting for the grace period")
    .addOption(json())
    .addOption(config())
    .action(async (o: UsersPurgeFlags) => done(await (await import("./usersCommand.ts")).usersPurge(o)));
  users
    .command("export <email>")
    .description("everything the gateway holds about a user (profile, sessions, API key metadata, their audit events) as JSON; no secrets")
    .addOption(config())
    .action(async (email: string, o: CommonFlags) => done(await (await import("./usersCommand.ts")).usersExport(email, o)));
  users
    .command("show <email>")
    .description("one user, with their API keys")
    .addOption(json())
    .addOption(config())
    .action(async (email: string, o: CommonFlags) => done(await (await import("./usersCommand.ts")).usersShow(email, o)));

  const keys = program.command("keys").description("manage partner API keys (changes reach every instance at once)");
  keys
    .command("create")
    .description("issue an API key; the key alone is the last line")
    .requiredOption("--owner <email>", "the owning user")
    .requiredOption("--name <name>", "a label for the key")
    .requiredOption("--tier <tier>", "rate-limit tier (rateLimit.tiers)")
    .option("--scopes <a,b>", "scopes of the active policy, comma-separated", "")
    .option("--expires-in <duration>", "lifetime such as 90d (default: apiKeys.maxExpiresInDays)")
    .addOption(json())
    .addOption(config())
    .action(async (o: KeysCreateFlags) => done(await (await import("./keysCommand.ts")).keysCreate(o)));
  keys
    .command("list")
    .description("list keys (never the keys themselves)")
    .option("--owner <email>", "only this user's keys")
    .addOption(json())
    .addOption(config())
    .action(async (o: CommonFlags & { owner?: string }) => done(await (await import("./keysCommand.ts")).keysList(o)));
  keys
    .command("revoke <id>")
    .description("revoke a key on every instance")
    .addOption(json())
    .addOption(config())
    .action(async (id: string, o: CommonFlags) => done(await (await import("./keysCommand.ts")).keysRevoke(id, o)));
  keys
    .command("rotate <id>")
    .description("issue a successor; the old key works until the grace ends")
    .option("--grace <duration>", "how long the old key keeps working", "24h")
    .addOption(json())
    .addOption(config())
    .action(async (id: string, o: CommonFlags & { grace: string }) => done(await (await import("./keysCommand.ts")).keysRotate(id, o)));

  const policy = program.command("policy").description("policy versions");
  policy
    .command("validate [target]")
    .description("validate a policy version or draft (a name under policy.dir, a version folder, or a folder of versions): every problem with file, line and field path")
    .addOption(json())
    .addOption(config())
    .action(async (dir: string | undefined, o: CommonFlags) => done(await (await import("./policyCommand.ts")).policyValidate(dir, o)));
  policy
    .command("test [target]")
    .description("run the policy tests of a version or draft (or of every version in a folder): one line per case, a summary with endpoint × role coverage")
    .addOption(json())
    .addOption(config())
    .action(async (dir: string | undefined, o: CommonFlags) => done(await (await import("./policyCommand.ts")).policyTest(dir, o)));
  policy
    .command("explain <method> <path>")
    .description("why a request is allowed or denied: the endpoint matched, each rule weighed with the values used, the deciding rule, blocked fields")
    .option("--role <roles>", "ask as these roles (comma-separated; anonymous for no credentials)")
    .option("--attr <key=value>", "a principal attribute, e.g. region=eu (repeatable)", (v: string, all: string[] = []) => [...all, v])
    .option("--user <email>", "ask as this user (roles and attributes from the database)")
    .option("--scopes <a,b>", "ask as an API key limited to these scopes")
    .option("--version <version>", "the version or draft to ask (default: the one this configuration starts with)")
    .option("--body <json>", "the JSON request body")
    .option("--resource <json>", "the resource's attributes, as the upstream's resolver would answer")
    .addOption(json())
    .addOption(config())
    .action(async (method: string, path: string, o: ExplainFlags) => done(await (await import("./explainCommand.ts")).policyExplain(method, path, o)));
  policy
    .command("diff <from> <to>")
    .description("what changes from one version (or draft) to another: every role × endpoint × method cell and every rule; --replay decides the audited traffic again")
    .option("--replay <duration>", "re-decide the audit log's decisions of this window (e.g. 24h) under <to> and count the flips")
    .addOption(json())
    .addOption(config())
    .action(async (from: string, to: string, o: { config?: string; json?: boolean; replay?: string }) => done(await (await import("./diffCommand.ts")).policyDiff(from, to, o)));
  policy
    .command("new <version>")
    .description("copy a version (default: the newest) into the draft folder _<version> with version and created set")
    .option("--from <version>", "the version to copy")
    .addOption(config())
    .action(async (version: string, o: { config?: string; from?: string }) => done(await (await import("./policyCommand.ts")).policyNew(version, o)));
  policy
    .command("publish <draft>")
    .description("validate and test a draft, then rename _<version> into place (it is not activated)")
    .addOption(config())
    .action(async (draft: string, o: { config?: string }) => done(await (await import("./policyCommand.ts")).policyPublish(draft, o)));
  policy
    .command("activate <version>")
    .description("record a version as active: every instance serves it within a second (Redis) or policy.activationCheckMs")
    .option("--reason <text>", "why, kept in the activation history")
    .addOption(json())
    .addOption(config())
    .action(async (version: string, o: CommonFlags & { reason?: string }) => done(await (await import("./policyCommand.ts")).policyActivate(version, o)));
  policy
    .command("rollback")
    .description("activate the version that was active before the current one, exactly as it was")
    .option("--reason <text>", "why, kept in the activation history")
    .addOption(json())
    .addOption(config())
    .action(async (o: CommonFlags & { reason?: string }) => done(await (await import("./policyCommand.ts")).policyRollback(o)));
  policy
    .command("status")
    .description("the recorded active version, its history, and every running instance with the version it serves")
    .addOption(json())
    .addOption(config())
    .action(async (o: CommonFlags) => done(await (await import("./policyCommand.ts")).policyStatus(o)));
  policy
    .command("reload")
    .description("make the running gateway re-read its policy folder (what SIGHUP does)")
    .addOption(json())
    .addOption(config())
    .action(async (o: CommonFlags) => done(await (await import("./policyCommand.ts")).policyReload(o)));

  program
    .command("outbox")
    .description("the development outboxes (auth.mail and auth.phone.sms transport outbox): what would have been sent")
    .command("list")
    .description("messages, newest first: channel, time, recipient, kind, text (codes and links included)")
    .option("--to <recipient>", "only to this email address or phone number")
    .option("--limit <n>", "messages (1-1000, default 50)")
    .addOption(json())
    .addOption(config())
    .action(async (o: OutboxListFlags) => done(await (await import("./outboxCommand.ts")).outboxList(o)));

  const audit = program.command("audit").description("the tamper-evident audit trail: verify its chains, search it, prune it");
  audit
    .command("verify")
    .description("recompute every hash chain and check the signed checkpoints; exit 1 naming the first edited, deleted, inserted or reordered row and any truncated tail")
    .option("--since <when>", "only events since a duration back (24h) or a date-time")
    .addOption(json())
    .addOption(config())
    .action(async (o: { config?: string; json?: boolean; since?: string }) => done(await (await import("./auditCommand.ts")).auditVerify(o)));
  audit
    .command("search")
    .description("events, newest first (--json: one JSON object a line, for export)")
    .option("--actor <userId>", "the acting user's id")
    .option("--key <keyId>", "the API key's id")
    .option("--action <action>", "e.g. auth.sign_in, or a prefix such as auth.*")
    .option("--decision <allow|deny>", "only allowed or only denied events")
    .option("--reason <code>", "e.g. INVALID_EMAIL_OR_PASSWORD, DENIED_BY_RULE")
    .option("--request-id <id>", "the x-request-id of a request")
    .option("--policy-version <version>", "the policy version that decided")
    .option("--since <when>", "a duration back (24h) or a date-time")
    .option("--until <when>", "a duration back or a date-time")
    .option("--limit <n>", "events per page (1-1000, default 100)")
    .option("--before <id>", "the page after this event id")
    .option("--all", "every page")
    .addOption(json())
    .addOption(config())
    .action(async (o: AuditSearchFlags) => done(await (await import("./auditCommand.ts")).auditSearch(o)));
  audit
    .command("prune")
    .description("delete events older than a duration, keeping the chains verifiable (a signed retention checkpoint)")
    .option("--older-than <duration>", "e.g. 90d (default: audit.retentionDays)")
    .addOption(json())
    .addOption(config())
    .action(async (o: { config?: string; json?: boolean; olderThan?: string }) => done(await (await import("./auditCommand.ts")).auditPrune(o)));

  program
    .command("demo-upstream")
    .description("run the demo marketplace upstream")
    .option("--host <host>", "listen address", "127.0.0.1")
    .option("--port <port>", "listen port")
    .option("--jwks-url <url>", "the gateway's JWKS, to verify identity assertions")
    .option("--audience <name>", "the upstream name assertions are addressed to")
    .option("--database-url <url>", "keep the marketplace's data in PostgreSQL (prisma/marketplace), for the Prisma resolver")
    .action(async (o: { host: string; port?: string; jwksUrl?: string; audience?: string; databaseUrl?: string }) => {
      const optional = (flag: string, value: string | undefined): string[] => (value === undefined ? [] : [flag, value]);
      const args = ["--host", o.host, ...optional("--port", o.port), ...optional("--jwks-url", o.jwksUrl), ...optional("--audience", o.audience), ...optional("--database-url", o.databaseUrl)];
      await (await import("../demo/upstreamMain.ts")).main(args);
      done(0);
    });
  program
    .command("completion")
    .description("print a bash completion script: source <(gerbang completion)")
    .action(async () => {
      process.stdout.write((await import("./completion.ts")).bashCompletion(program));
      done(0);
    });
  return program;
}

/** One line per runnable command with all its flags, generated from the definition. */
function synopsis(command: Command, path: string[] = []): string[] {
  if (command.commands.length > 0) return command.commands.filter((c) => c.name() !== "help").flatMap((c) => synopsis(c, [...path, c.name()]));
  const args = command.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`));
  const flags = command.options.map((o) => (o.mandatory ? o.flags : `[${o.flags}]`));
  return [["gerbang", ...path, ...args, ...flags].join(" ")];
}

export interface CommonFlags {
  config?: string;
  json?: boolean;
}
export interface UsersListFlags extends CommonFlags {
  search?: string;
  role?: string;
  banned?: boolean;
  limit?: string;
  offset?: string;
}
export interface UsersBanFlags extends CommonFlags {
  reason?: string;
  expiresIn?: string;
}
export interface OutboxListFlags extends CommonFlags {
  to?: string;
  limit?: string;
}
export interface UsersDeleteFlags extends CommonFlags {
  graceDays?: string;
}
export interface UsersPurgeFlags extends CommonFlags {
  email?: string;
  now?: boolean;
}
export interface UsersRevokeFlags extends CommonFlags {
  keys?: boolean;
}
export interface UsersCreateFlags extends CommonFlags {
  email: string;
  password: string;
  role: string;
  name?: string;
  attr?: string[];
}
export interface KeysCreateFlags extends CommonFlags {
  owner: string;
  name: string;
  tier: string;
  scopes: string;
  expiresIn?: string;
}

/** Returns the process exit code (0 done, 1 failed, 2 usage); never throws. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  if (argv.length === 0) {
    program.outputHelp();
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are successes; everything else commander refuses is a usage mistake (already printed).
      return error.exitCode === 0 ? 0 : 2;
    }
    // Messages only: a stack trace is for developers, and may carry connection strings.
    process.stderr.write(`gerbang: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof CliError ? 2 : 1;
  }
}
