import type { UserView } from "../admin/operations.ts";
import { CliError } from "./cliError.ts";
import type { CommonFlags, UsersBanFlags, UsersCreateFlags, UsersDeleteFlags, UsersListFlags, UsersPurgeFlags, UsersRevokeFlags } from "./main.ts";
import { operate, operatorConfig } from "./operate.ts";
import { keyLine, seconds } from "./keysCommand.ts";

const out = (text: string): void => void process.stdout.write(`${text}\n`);
const userLine = (u: UserView): string => [u.id, u.email, u.roles.join(","), u.name, `region=${u.region ?? "-"}`, u.purged ? "purged" : u.deletedAt !== null ? `deleted (purge due ${u.purgeAfter ?? "?"})` : u.banned ? "banned" : u.emailVerified ? "verified" : "unverified"].join("\t");

/** `users create`: prints the new id alone on its last line. */
export async function usersCreate(flags: UsersCreateFlags): Promise<number> {
  const attributes: Record<string, string> = {};
  for (const pair of flags.attr ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`--attr takes key=value, got ${pair}`);
    attributes[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const user = await operate(operatorConfig(flags.config), "users.create", {
    email: flags.email,
    password: flags.password,
    role: flags.role,
    attributes,
    ...(flags.name === undefined ? {} : { name: flags.name }),
  });
  out(flags.json === true ? JSON.stringify(user) : user.id);
  return 0;
}

export async function usersList(flags: UsersListFlags): Promise<number> {
  const page = await operate(operatorConfig(flags.config), "users.list", {
    ...(flags.search === undefined ? {} : { search: flags.search }),
    ...(flags.role === undefined ? {} : { role: flags.role }),
    ...(flags.banned === true ? { banned: true } : {}),
    ...(flags.limit === undefined ? {} : { limit: integer(flags.limit, "--limit") }),
    ...(flags.offset === undefined ? {} : { offset: integer(flags.offset, "--offset") }),
  });
  if (flags.json === true) out(JSON.stringify(page.users));
  else for (const u of page.users) out(userLine(u));
  // The page's place goes to stderr: stdout stays the users alone, whatever the format.
  if (page.nextOffset !== null) process.stderr.write(`${page.users.length} of ${page.total} users; the next page: --offset ${page.nextOffset}\n`);
  return 0;
}

const integer = (raw: string, flag: string): number => {
  if (!/^\d{1,9}$/.test(raw)) throw new CliError(`${flag} takes a whole number, got ${raw}`);
  return Number(raw);
};

/** Whether running gateways heard of a change, said where an operator will see it. */
function changed(announced: boolean): void {
  if (!announced) process.stderr.write("warning: saved, but no running gateway was told (Redis not configured or unreachable); they apply it within auth.sessionCacheTtlMs\n");
}

export async function usersSetRole(email: string, role: string, flags: CommonFlags): Promise<number> {
  const user = await operate(operatorConfig(flags.config), "users.set-role", { email, role });
  out(flags.json === true ? JSON.stringify(user) : `${userLine(user)}\t${user.sessionsRevoked} sessions ended (a new role takes a new sign-in)`);
  changed(user.announced);
  return 0;
}

export async function usersSetAttr(email: string, pairs: string[], flags: CommonFlags): Promise<number> {
  const attributes: Record<string, string | null> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`attributes are key=value (key= removes it), got ${pair}`);
    const value = pair.slice(eq + 1);
    attributes[pair.slice(0, eq)] = value === "" ? null : value;
  }
  const user = await operate(operatorConfig(flags.config), "users.set-attr", { email, attributes });
  out(flags.json === true ? JSON.stringify(user) : userLine(user));
  changed(user.announced);
  return 0;
}

export async function usersBan(email: string, flags: UsersBanFlags): Promise<number> {
  const user = await operate(operatorConfig(flags.config), "users.ban", {
    email,
    ...(flags.reason === undefined ? {} : { reason: flags.reason }),
    ...(flags.expiresIn === undefined ? {} : { expiresInSec: seconds(flags.expiresIn, "--expires-in") }),
  });
  out(flags.json === true ? JSON.stringify(user) : `${userLine(user)}\t${user.sessionsRevoked} sessions revoked`);
  changed(user.announced);
  return 0;
}

export async function usersUnban(email: string, flags: CommonFlags): Promise<number> {
  const user = await operate(operatorConfig(flags.config), "users.unban", { email });
  out(flags.json === true ? JSON.stringify(user) : userLine(user));
  changed(user.announced);
  return 0;
}

export async function usersRevokeSessions(email: string, flags: UsersRevokeFlags): Promise<number> {
  const result = await operate(operatorConfig(flags.config), "users.revoke-sessions", { email, ...(flags.keys === true ? { keys: true } : {}) });
  out(flags.json === true ? JSON.stringify(result) : `${result.sessionsRevoked} sessions revoked${flags.keys === true ? `, ${result.keysRevoked.length} API keys revoked` : ""}`);
  changed(result.announced);
  return 0;
}

export async function usersShow(email: string, flags: CommonFlags): Promise<number> {
  const user = await operate(operatorConfig(flags.config), "users.show", { email });
  if (flags.json === true) out(JSON.stringify(user));
  else {
    out(userLine(user));
    for (const key of user.keys) out(`  key ${keyLine(key)}`);
  }
  return 0;
}

/** `users export`: the user's data as one JSON document on stdout (`> file.json`). */
export async function usersExport(email: string, flags: CommonFlags): Promise<number> {
  out(JSON.stringify(await operate(operatorConfig(flags.config), "users.export", { email }), null, 2));
  return 0;
}

export async function usersDelete(email: string, flags: UsersDeleteFlags): Promise<number> {
  const result = await operate(operatorConfig(flags.config), "users.delete", {
    email,
    ...(flags.graceDays === undefined ? {} : { graceDays: integer(flags.graceDays, "--grace-days") }),
  });
  out(flags.json === true ? JSON.stringify(result) : `deleted ${result.user}: ${result.sessionsRevoked} sessions ended, ${result.keysRevoked.length} API keys revoked; personal data purged after ${result.purgeAfter} (gerbang users restore undoes it until then)`);
  changed(result.announced);
  return 0;
}

export async function usersRestore(email: string, flags: CommonFlags): Promise<number> {
  const user = await operate(operatorConfig(flags.config), "users.restore", { email });
  out(flags.json === true ? JSON.stringify(user) : `${userLine(user)}\tsign-in allowed again; ended sessions and revoked keys stay so`);
  changed(user.announced);
  return 0;
}

/** `users purge`: the purged ids, one per line (none: nothing was due). */
export async function usersPurge(flags: UsersPurgeFlags): Promise<number> {
  if (flags.now === true && flags.email === undefined) throw new CliError("--now purges one deleted user: name it with --email");
  const result = await operate(operatorConfig(flags.config), "users.purge", {
    ...(flags.email === undefined ? {} : { email: flags.email }),
    ...(flags.now === true ? { now: true } : {}),
  });
  if (flags.json === true) out(JSON.stringify(result));
  else {
    for (const id of result.purged) out(id);
    process.stderr.write(`${result.purged.length} users purged\n`);
  }
  return 0;
}
