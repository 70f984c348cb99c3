/** Empty (allowed by RFC 9112 §3.2), or a reg-name/IPv4 of unreserved characters or an [IPv6] literal, then an optional port. */
const HOST = /^(?:(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?)?$/;

/**
 * RFC 9112 §3.2: a request with more than one Host, or a Host that is not host[:port], gets 400.
 * Node keeps the first Host silently; a component behind the gateway could read another one.
 */
export function validHost(rawHeaders: readonly string[]): boolean {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (name === undefined || name.length !== 4 || name.toLowerCase() !== "host") continue;
    seen += 1;
    if (seen > 1 || !HOST.test(rawHeaders[i + 1] ?? "")) return false;
  }
  return true;
}
