import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/**
 * The configured secret, or one generated once into dataDir (mode 0600). A generated secret is fine
 * for one instance; several instances must share GERBANG_SECRET or their cookies differ.
 */
export function resolveSecret(configured: string | undefined, dataDir: string): { secret: string; generated: boolean } {
  if (configured !== undefined) return { secret: configured, generated: false };
  const file = join(dataDir, "secret");
  if (existsSync(file)) return { secret: readFileSync(file, "utf8").trim(), generated: true };
  const secret = randomBytes(32).toString("base64url");
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return { secret, generated: true };
}
