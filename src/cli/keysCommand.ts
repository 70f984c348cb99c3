import { parseArgs } from "node:util";
import { ApiKeyService, type KeyView } from "../keys/apiKeyService.ts";
import { InvalidationBus } from "../keys/invalidationBus.ts";
import { parseDuration } from "../keys/duration.ts";
import { loadActivePolicy } from "../runtime/activePolicy.ts";
import { GerbangError } from "../errors/catalogue.ts";
import { CliError } from "./cliError.ts";
import { openOperatorContext } from "./operatorContext.ts";

const OPTIONS = {
  config: { type: "string" },
  owner: { type: "string" },
  name: { type: "string" },
  tier: { type: "string" },
  scopes: { type: "string" },
  "expires-in": { type: "string" },
  grace: { type: "string" },
  json: { type: "boolean" },
} as const;

function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = parseDuration(text);
  if (value === null) throw new CliError(`${flag} takes a duration such as 90s, 15m, 24h or 30d, got ${text}`);
  return value;
}

function line(view: KeyView): string {
  return [view.id, view.status, view.tier, view.scopes.join(","), view.ownerEmail, view.name ?? "", `expires=${view.expiresAt ?? "never"}`, `last-used=${view.lastUsedAt ?? "never"}`].join("\t");
}

/**
 * `gerbang keys create|list|revoke|rotate`: the operator's side of the key lifecycle. Changes are
 * published on Redis (REDIS_URL) so running gateways drop the key at once. `create` and `rotate`
 * print the new key alone on their last line: it is shown once and stored only as a hash.
 */
export async function keysCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "create" && sub !== "list" && sub !== "revoke" && sub !== "rotate") throw new CliError(`unknown keys command ${sub ?? "(none)"}`);
  let parsed: { values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string }; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const id = positionals[0];
  if ((sub === "revoke" || sub === "rotate") && (id === undefined || positionals.length > 1)) throw new CliError(`keys ${sub} takes exactly one key id`);
  if ((sub === "create" || sub === "list") && positionals.length > 0) throw new CliError(`keys ${sub} takes no positional arguments`);
  if (sub === "create" && (values.owner === undefined || values.name === undefined || values.tier === undefined)) {
    throw new CliError("keys create needs --owner <email>, --name <n> and --tier <t>");
  }
  const expiresInSec = seconds(values["expires-in"], "--expires-in");
  const graceSec = seconds(values.grace, "--grace");

  const ctx = await openOperatorContext(values.config, { redis: sub === "revoke" || sub === "rotate" });
  try {
    const { config, db, auth } = ctx;
    const policy = loadActivePolicy(config);
    const service = new ApiKeyService(auth, db.prisma, {
      tiers: Object.keys(config.rateLimit.tiers),
      scopes: () => new Set(policy.scopes.keys()),
      maxExpiresInDays: config.apiKeys.maxExpiresInDays,
      bus: new InvalidationBus(ctx.redis, null, ctx.config.redis.keyPrefix),
    });
    const ownerId = async (email: string): Promise<string> => {
      const user = await db.prisma.user.findUnique({ where: { email: email.toLowerCase() }, select: { id: true } });
      if (user === null) throw new CliError(`no user with email ${email}`);
      return user.id;
    };
    const out = (text: string): boolean => process.stdout.write(`${text}\n`);

    if (sub === "create") {
      const scopes = (values.scopes ?? "").split(",").map((s) => s.trim()).filter(Boolean);
      const { key, view } = await service.create({
        ownerId: await ownerId(values.owner ?? ""),
        name: values.name ?? "",
        tier: values.tier ?? "",
        scopes,
        ...(expiresInSec === undefined ? {} : { expiresInSec }),
      });
      out(values.json === true ? JSON.stringify(view) : `created ${line(view)}`);
      out(key);
    } else if (sub === "list") {
      const views = await service.list({}, values.owner === undefined ? undefined : await ownerId(values.owner));
      if (values.json === true) out(JSON.stringify(views));
      else for (const view of views) out(line(view));
    } else if (sub === "revoke") {
      const view = await service.revoke(id ?? "", {});
      out(values.json === true ? JSON.stringify(view) : `revoked ${line(view)}`);
    } else {
      const { key, view, previous } = await service.rotate(id ?? "", graceSec ?? 86400, {});
      out(values.json === true ? JSON.stringify({ ...view, previous }) : `rotated ${previous.id} (works until ${previous.expiresAt ?? "?"}) -> ${line(view)}`);
      out(key);
    }
    return 0;
  } catch (error) {
    if (error instanceof GerbangError) throw new Error(error.message);
    throw error;
  } finally {
    await ctx.close();
  }
}
