/**
 * The name/value pairs of a query string (with or without its `?`) or an urlencoded body, decoded
 * the way form parsers decode them (`+` is a space). A pair that does not decode is kept as written.
 */
export function* queryParams(text: string): Generator<[name: string, value: string]> {
  const body = text.startsWith("?") ? text.slice(1) : text;
  if (body.length === 0) return;
  for (const pair of body.split("&")) {
    const eq = pair.indexOf("=");
    yield [decode(eq < 0 ? pair : pair.slice(0, eq)), eq < 0 ? "" : decode(pair.slice(eq + 1))];
  }
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}
