import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import Value from "#typebox/value";
import { ConfigSchema, TierLimit, type GerbangConfig } from "./schema.ts";

export class ConfigError extends Error {
  readonly path: string;

  constructor(
    path: string,
    message: string,
  ) {
    super(`config ${path || "/"}: ${message}`);
    this.path = path;
    this.name = "ConfigError";
  }
}

export interface LoadConfigOptions {
  /** YAML or JSON file; absent means "all defaults" (the embedded demo). */
  file?: string;
  env?: NodeJS.ProcessEnv;
}

/** Environment variables that override the file, documented in the README. */
const ENV_OVERRIDES: ReadonlyArray<[string, (c: Record<string, Record<string, unknown>>, v: string) => void]> = [
  ["PORT", (c, v) => (c.server = { ...c.server, port: Number(v) })],
  ["DATABASE_URL", (c, v) => (c.database = { ...c.database, url: v })],
  ["DIRECT_DATABASE_URL", (c, v) => (c.database = { ...c.database, directUrl: v })],
  ["REDIS_URL", (c, v) => (c.redis = { ...c.redis, url: v })],
  ["GERBANG_SECRET", (c, v) => ((c as Record<string, unknown>).secret = v)],
  ["SMTP_URL", (c, v) => (c.auth = { ...c.auth, mail: { ...(c.auth?.mail as object | undefined), smtpUrl: v } })],
  [
    "TWILIO_AUTH_TOKEN",
    (c, v) => {
      const phone = (c.auth?.phone ?? {}) as { sms?: { twilio?: object } };
      // Only for a configured Twilio: a token in the environment alone configures nothing.
      if (phone.sms?.twilio === undefined) return;
      c.auth = { ...c.auth, phone: { ...phone, sms: { ...phone.sms, twilio: { ...phone.sms?.twilio, authToken: v } } } };
    },
  ],
];

export function loadConfig(options: LoadConfigOptions = {}): GerbangConfig {
  const env = options.env ?? process.env;
  let raw: unknown = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, "utf8");
    } catch (error) {
      throw new ConfigError("", `cannot read ${options.file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (error) {
      throw new ConfigError("", `${options.file} is not valid YAML/JSON: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  return resolveConfig(raw, env, options.file === undefined);
}

/** Validates an in-memory config (tests and `loadConfig` share it). */
export function resolveConfig(raw: unknown, env: NodeJS.ProcessEnv = {}, demoWhenEmpty = false): GerbangConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError("", "must be a mapping");
  // A JSON copy, not structuredClone: YAML anchors make one object appear in several places, and
  // defaults filled into one of them must not leak into the others.
  const input = JSON.parse(JSON.stringify(raw)) as Record<string, Record<string, unknown>>;
  for (const [name, apply] of ENV_OVERRIDES) {
    const value = env[name];
    if (value !== undefined && value !== "") apply(input, value);
  }
  if (demoWhenEmpty && input.upstreams === undefined) input.demo = { ...input.demo, upstream: true };

  const tiers = (input.rateLimit as { tiers?: unknown } | undefined)?.tiers;
  if (typeof tiers === "object" && tiers !== null && !Array.isArray(tiers)) {
    for (const [name, tier] of Object.entries(tiers)) (tiers as Record<string, unknown>)[name] = Value.Default(TierLimit, tier);
  }
  const withDefaults = Value.Default(ConfigSchema, input);
  const first = Value.Errors(ConfigSchema, withDefaults).find((e) => e.keyword !== "boolean");
  if (first !== undefined) {
    const extra = first.keyword === "additionalProperties" ? unknownKeys(first.params) : "";
    throw new ConfigError(first.instancePath, `${first.message}${extra}`);
  }
  const config = withDefaults as GerbangConfig;
  if (config.upstreams === undefined && !config.demo.upstream) {
    throw new ConfigError("/upstreams", "is required (or set demo.upstream: true)");
  }
  if (config.server.headersTimeoutMs > config.server.requestTimeoutMs) {
    throw new ConfigError("/server/headersTimeoutMs", `must not be above server.requestTimeoutMs (${config.server.requestTimeoutMs})`);
  }
  if (config.auth.mail.transport === "smtp" && config.auth.mail.smtpUrl === undefined) {
    throw new ConfigError("/auth/mail/smtpUrl", "is required when transport is smtp (or set SMTP_URL)");
  }
  if (config.database.directUrl !== undefined && config.database.url === undefined) throw new ConfigError("/database/directUrl", "is set, but database.url is not (the embedded database needs neither)");
  if (config.redis.sentinel !== undefined && config.redis.cluster !== undefined) {
    throw new ConfigError("/redis/cluster", "cannot be set with redis.sentinel: a deployment is either a cluster or a primary the Sentinels watch");
  }
  if (config.database.transactionPooler && config.database.directUrl === undefined) {
    throw new ConfigError("/database/directUrl", "is required with transactionPooler: migrations hold a session-level lock, which a transaction-mode pooler cannot keep (or set DIRECT_DATABASE_URL)");
  }
  const sms = config.auth.phone.sms;
  if (sms.transport === "twilio" && (sms.twilio === undefined || sms.twilio.authToken === undefined)) {
    throw new ConfigError(sms.twilio === undefined ? "/auth/phone/sms/twilio" : "/auth/phone/sms/twilio/authToken", "is required when transport is twilio (the token: or set TWILIO_AUTH_TOKEN)");
  }
  const names = new Set<string>();
  for (const [i, u] of (config.upstreams ?? []).entries()) {
    if (names.has(u.name)) throw new ConfigError(`/upstreams/${i}/name`, `duplicate upstream name ${u.name}`);
    if (u.prefix.split("/").some((seg) => seg === "." || seg === "..")) throw new ConfigError(`/upstreams/${i}/prefix`, "must not contain dot segments");
    names.add(u.name);
  }
  return config;
}

function unknownKeys(params: unknown): string {
  const keys = (params as { additionalProperties?: unknown }).additionalProperties;
  return Array.isArray(keys) ? ` (unknown: ${keys.join(", ")})` : "";
}
