/** The gateway's catalogue error (code and reason) in a response body, or undefined for anything else (an upstream's answer). */
export function catalogueError(body: string): { code: string; reason: string | undefined } | undefined {
  try {
    const error = (JSON.parse(body) as { error?: unknown }).error;
    if (typeof error !== "object" || error === null || !("code" in error) || typeof error.code !== "string") return undefined;
    return { code: error.code, reason: "reason" in error && typeof error.reason === "string" ? error.reason : undefined };
  } catch {
    return undefined;
  }
}

export interface ErrorShape {
  code?: string;
  reason?: string;
  message?: string;
  requestId?: string;
}

/** The `error` object of a catalogue body, or `{}` for any other body. */
export function errorOf(body: string): ErrorShape {
  try {
    return (JSON.parse(body) as { error?: ErrorShape }).error ?? {};
  } catch {
    return {};
  }
}
