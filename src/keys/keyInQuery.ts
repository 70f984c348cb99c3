import { API_KEY_PREFIX } from "./apiKeyFormat.ts";
import { queryParams } from "../pipeline/queryParams.ts";

const KEY_PARAM = /^(?:x[-_]?)?api[-_]?key$/i;

/** Does the query carry an API key (a key-named parameter, or a value that looks like one)? */
export function keyInQuery(query: string): boolean {
  for (const [name, value] of queryParams(query)) {
    if (KEY_PARAM.test(name) || value.toLowerCase().includes(API_KEY_PREFIX)) return true;
  }
  return false;
}
