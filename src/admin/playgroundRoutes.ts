import { readFileSync } from "node:fs";
import type { FastifyInstance, FastifyReply } from "fastify";

const asset = (name: string): string => readFileSync(new URL(`./playground/${name}`, import.meta.url), "utf8");

/**
 * A security tool's page, built like one: no inline script or style (the CSP allows this origin's files
 * only), never framed, no referrer, never cached. The page only calls the admin API, which the policy
 * authorizes call by call; these routes are endpoints of the policy too (registered inside adminRoutes).
 */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

export function playgroundRoutes(app: FastifyInstance, prefix: string, route: { config: { endpoint: string } }): void {
  // Read once at startup: a page changes with a release, not at run time.
  const files = {
    html: asset("playground.html"),
    js: asset("playground.js"),
    css: asset("playground.css"),
  };
  const send = (type: string, body: string) => async (_request: unknown, reply: FastifyReply) => reply.headers({ ...PAGE_HEADERS, "content-type": type }).send(body);
  app.get(`${prefix}/playground`, route, send("text/html; charset=utf-8", files.html));
  app.get(`${prefix}/playground/playground.js`, route, send("text/javascript; charset=utf-8", files.js));
  app.get(`${prefix}/playground/playground.css`, route, send("text/css; charset=utf-8", files.css));
}
