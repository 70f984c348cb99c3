import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { AbilityCache } from "../policy/abilityCache.ts";
import { explainRequest, formatExplanation } from "../policy/explainDecision.ts";
import type { RequestPrincipal } from "../policy/decideRequest.ts";
import { activeVersionDir, loadActivePolicy, policyRoot } from "../runtime/activePolicy.ts";
import { CliError } from "./cliError.ts";
import { normalizeTarget } from "../pipeline/normalizeTarget.ts";
import { operate, operatorConfig } from "./operate.ts";

export interface ExplainFlags {
  config?: string;
  json?: boolean;
  role?: string;
  attr?: string[];
  user?: string;
  scopes?: string;
  version?: string;
  body?: string;
  resource?: string;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

function jsonObject(text: string | undefined, flag: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${flag} must be JSON, e.g. ${flag} '{"name":"x"}'`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new CliError(`${flag} must be a JSON object`);
  return value as Record<string, unknown>;
}

function attributes(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw new CliError(`--attr takes key=value, not ${pair}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

/**
 * `policy explain`: the decision for a request as the gateway would make it under a version (default:
 * the one this configuration starts with; drafts allowed), and each rule weighed, with the values used.
 * The principal is a role set with attributes, or a real user (`--user`, read from the database).
 */
export async function policyExplain(method: string, path: string, flags: ExplainFlags): Promise<number> {
  if ((flags.role === undefined) === (flags.user === undefined)) throw new CliError("give --role <roles> or --user <email>");
  if (!path.startsWith("/")) throw new CliError(`the path must start with /, not ${path}`);
  if (!METHODS.has(method.toUpperCase())) throw new CliError(`unknown method ${method}: one of ${[...METHODS].join(", ")}`);
  const config = operatorConfig(flags.config);
  const root = policyRoot(config.policy.dir);
  const dir = flags.version === undefined ? activeVersionDir(config) : existsSync(join(root, flags.version)) ? join(root, flags.version) : resolve(flags.version);
  const policy = loadActivePolicy(config, dir);
  let principal: RequestPrincipal;
  const scopes = flags.scopes === undefined ? null : flags.scopes.split(",").map((s) => s.trim()).filter(Boolean);
  if (flags.user !== undefined) {
    const user = await operate(config, "users.show", { email: flags.user });
    if (user.banned) process.stderr.write(`gerbang: ${user.email} is banned: the gateway refuses them before the policy is asked\n`);
    principal = { roles: user.roles, attributes: { id: user.id, email: user.email, ...(user.region === null ? {} : { region: user.region }), ...attributes(flags.attr ?? []) }, scopes, anonymous: false };
  } else {
    const roles = (flags.role ?? "").split(",").map((r) => r.trim()).filter(Boolean);
    principal = { roles, attributes: attributes(flags.attr ?? []), scopes, anonymous: roles.length === 1 && roles[0] === "anonymous" };
  }
  const body = jsonObject(flags.body, "--body");
  const resourceAttributes = jsonObject(flags.resource, "--resource");
  const target = normalizeTarget(path, { caseInsensitive: config.policy.caseInsensitivePaths });
  if (!target.ok) throw new CliError(`the gateway refuses this path before any policy is asked (${target.reason}): ${target.detail}`);
  const explanation = explainRequest(new AbilityCache(policy), principal, {
    method,
    path: target.path,
    ...(body === undefined ? {} : { body }),
    ...(resourceAttributes === undefined ? {} : { resource: resourceAttributes }),
  });
  process.stdout.write(flags.json === true ? `${JSON.stringify(explanation)}\n` : formatExplanation(explanation));
  return 0;
}
