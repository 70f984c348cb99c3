import type { KeyView } from "../keys/apiKeyService.ts";
import { parseDuration } from "../keys/duration.ts";
import { CliError } from "./cliError.ts";
import type { CommonFlags, KeysCreateFlags } from "./main.ts";
import { operate, operatorConfig } from "./operate.ts";

/** A duration flag (90s, 15m, 24h, 30d) in seconds, or a usage error naming the flag. */
export function seconds(text: string, flag: string): number {
  const value = parseDuration(text);
  if (value === null) throw new CliError(`${flag} takes a duration such as 90s, 15m, 24h or 30d, got ${text}`);
  return value;
}

export function keyLine(view: KeyView): string {
  return [view.id, view.status, view.tier, view.scopes.join(","), view.ownerEmail, view.name ?? "", `expires=${view.expiresAt ?? "never"}`, `last-used=${view.lastUsedAt ?? "never"}`].join("\t");
}

const out = (text: string): void => void process.stdout.write(`${text}\n`);

// `keys create|list|revoke|rotate`: the operator's side of the key lifecycle. `create` and `rotate`
// print the new key alone on their last line: it is shown once and stored only as a hash.

export async function keysCreate(flags: KeysCreateFlags): Promise<number> {
  const expiresInSec = flags.expiresIn === undefined ? undefined : seconds(flags.expiresIn, "--expires-in");
  const scopes = flags.scopes.split(",").map((s) => s.trim()).filter(Boolean);
  const { key, view } = await operate(operatorConfig(flags.config), "keys.create", {
    owner: flags.owner,
    name: flags.name,
    tier: flags.tier,
    scopes,
    ...(expiresInSec === undefined ? {} : { expiresInSec }),
  });
  out(flags.json === true ? JSON.stringify(view) : `created ${keyLine(view)}`);
  out(key);
  return 0;
}

export async function keysList(flags: CommonFlags & { owner?: string }): Promise<number> {
  const views = await operate(operatorConfig(flags.config), "keys.list", flags.owner === undefined ? {} : { owner: flags.owner });
  if (flags.json === true) out(JSON.stringify(views));
  else for (const view of views) out(keyLine(view));
  return 0;
}

export async function keysRevoke(id: string, flags: CommonFlags): Promise<number> {
  const view = await operate(operatorConfig(flags.config), "keys.revoke", { id });
  out(flags.json === true ? JSON.stringify(view) : `revoked ${keyLine(view)}`);
  return 0;
}

export async function keysRotate(id: string, flags: CommonFlags & { grace: string }): Promise<number> {
  const graceSec = seconds(flags.grace, "--grace");
  const { key, view, previous } = await operate(operatorConfig(flags.config), "keys.rotate", { id, graceSec });
  out(flags.json === true ? JSON.stringify({ ...view, previous }) : `rotated ${previous.id} (works until ${previous.expiresAt ?? "?"}) -> ${keyLine(view)}`);
  out(key);
  return 0;
}
