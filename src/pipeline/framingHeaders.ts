/**
 * Framing and routing fields that some components fold from another spelling: CGI, PHP, nginx
 * (`underscores_in_headers`) and WSGI servers read `Transfer_Encoding` as `Transfer-Encoding`. Node
 * treats it as an unknown field, so a request could be framed one way here and another way behind.
 */
const FRAMING = new Set(["transfer-encoding", "content-length", "host", "te", "trailer", "connection", "upgrade", "expect"]);

/** Whether a request carries a framing field under a spelling other than its own (e.g. `Content_Length`). */
export function hasObfuscatedFramingHeader(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.includes("_") && FRAMING.has(name.toLowerCase().replace(/_/g, "-"))) return true;
  }
  return false;
}
