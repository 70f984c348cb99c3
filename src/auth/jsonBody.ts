/**
 * A raw auth-route body as a JSON object, read the way Better Auth reads it (UTF-8 with its BOM
 * stripped, malformed bytes replaced) — or, with `fatal`, refusing malformed UTF-8 as the rate-limit
 * buckets do. Null when there is no body or it is not a JSON object.
 */
export function jsonObjectOf(body: unknown, options: { fatal?: boolean } = {}): Record<string, unknown> | null {
  if (!(body instanceof Buffer) || body.length === 0) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: options.fatal === true }).decode(body));
  } catch {
    return null;
  }
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
}
