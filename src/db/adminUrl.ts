/** The same connection URL pointing at another database (e.g. a throwaway test database). */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** The URL with its password (userinfo or `?password=`) replaced by `***`, safe for logs and errors. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Unparseable input may still carry a secret; mask anything shaped like user:password@.
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@").replace(/(password=)[^&]*/gi, "$1***");
  }
  if (parsed.password !== "") parsed.password = "***";
  for (const key of [...parsed.searchParams.keys()]) {
    if (key.toLowerCase() === "password") parsed.searchParams.set(key, "***");
  }
  return parsed.toString();
}
