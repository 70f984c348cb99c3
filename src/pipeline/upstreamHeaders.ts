import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Principal } from "../auth/principal.ts";
import { withoutGatewayCookies } from "../auth/gatewayCookies.ts";
import { formatTraceparent, type TraceContext } from "../tracing/traceContext.ts";

/** Hop-by-hop (RFC 9110 §7.6.1) and headers a proxy must never pass on. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate", "expect", "host", "content-length"]);

/** Client-sent headers that some upstream frameworks trust for routing, method or client identity. */
const SPOOFABLE = new Set([
  "authorization", "x-api-key",
  "x-original-url", "x-rewrite-url", "x-original-method", "x-http-method-override", "x-http-method", "x-method-override",
  // Host overrides (Symfony/Laravel trusted-host bypasses, IIS/ARR): the upstream's Host is the gateway's choice.
  "x-host", "x-original-host", "x-http-host-override", "x-forwarded-server",
  // Trace context is the gateway's to give: a trusted caller's is continued through IdentityContext.trace.
  "traceparent", "tracestate",
  "x-middleware-subrequest", "forwarded", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "x-cluster-client-ip", "x-request-id",
]);

export interface IdentityContext {
  principal: Principal;
  policyVersion: string;
  requestId: string;
  assertion: string;
  clientIp: string;
  proto: "http" | "https";
  trace?: TraceContext | undefined;
}

function stripped(name: string): boolean {
  // Node keeps "_" in header names, and some upstream stacks (CGI, PHP, nginx) fold it into "-".
  const folded = name.toLowerCase().replace(/_/g, "-");
  return HOP_BY_HOP.has(folded) || SPOOFABLE.has(folded) || folded.startsWith("x-gerbang-") || folded.startsWith("x-forwarded-");
}

/** The exact header set the upstream receives: client headers minus credentials and spoofable ones, plus identity. */
export function upstreamHeaders(incoming: IncomingHttpHeaders, identity: IdentityContext): OutgoingHttpHeaders {
  // The gateway's own headers first: an upstream that keeps only the first N header fields (Node: 2000)
  // must lose client headers, never the identity.
  const { principal } = identity;
  const out: OutgoingHttpHeaders = {};
  if (principal.userId !== null) out["x-gerbang-user"] = principal.userId;
  out["x-gerbang-roles"] = principal.roles.join(",");
  out["x-gerbang-auth"] = principal.authMethod;
  if (principal.key !== undefined) out["x-gerbang-key"] = principal.key.id;
  out["x-gerbang-policy"] = identity.policyVersion;
  out["x-gerbang-assertion"] = identity.assertion;
  out["x-request-id"] = identity.requestId;
  out["x-forwarded-for"] = identity.clientIp;
  out["x-forwarded-proto"] = identity.proto;
  const trace = identity.trace;
  if (trace !== undefined) {
    out.traceparent = formatTraceparent(trace);
    if (trace.tracestate !== null) out.tracestate = trace.tracestate;
  }
  const connectionListed = new Set(
    String(incoming.connection ?? "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean),
  );
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || stripped(name) || connectionListed.has(name)) continue;
    out[name] = value;
  }
  if (typeof incoming.cookie === "string") {
    // Every gateway cookie, not only the session: cookie-cache data, dont_remember, admin_session.
    const cookie = withoutGatewayCookies(incoming.cookie);
    if (cookie === undefined) delete out.cookie;
    else out.cookie = cookie;
  }
  return out;
}
