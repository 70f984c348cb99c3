const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90s", "15m", "24h", "30d" → seconds; anything else is null. */
export function parseDuration(text: string): number | null {
  const match = /^([1-9][0-9]{0,6})([smhd])$/.exec(text.trim());
  if (match === null) return null;
  return Number(match[1]) * (UNITS[match[2] ?? ""] ?? 0);
}
