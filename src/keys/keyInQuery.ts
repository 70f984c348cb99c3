import { API_KEY_PREFIX } from "./apiKeyFormat.ts";

const KEY_PARAM = /^(?:x[-_]?)?api[-_]?key$/i;

/** Does the query carry an API key (a key-named parameter, or a value that looks like one)? */
export function keyInQuery(query: string): boolean {
  if (query.length <= 1) return false;
  for (const pair of query.slice(1).split("&")) {
    const eq = pair.indexOf("=");
    const name = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? "" : decode(pair.slice(eq + 1));
    if (KEY_PARAM.test(name) || value.toLowerCase().includes(API_KEY_PREFIX)) return true;
  }
  return false;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}
