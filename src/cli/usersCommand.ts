import type { UserView } from "../admin/operations.ts";
import { CliError } from "./cliError.ts";
import type { CommonFlags, UsersCreateFlags } from "./main.ts";
import { operate, operatorConfig } from "./operate.ts";
import { keyLine } from "./keysCommand.ts";

const out = (text: string): void => void process.stdout.write(`${text}\n`);
const userLine = (u: UserView): string => [u.id, u.email, u.roles.join(","), u.name, `region=${u.region ?? "-"}`, u.banned ? "banned" : u.emailVerified ? "verified" : "unverified"].join("\t");

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

export async function usersList(flags: CommonFlags): Promise<number> {
  const users = await operate(operatorConfig(flags.config), "users.list", {});
  if (flags.json === true) out(JSON.stringify(users));
  else for (const u of users) out(userLine(u));
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
