import type { FastifyRequest } from "fastify";
import type { OutgoingHttpHeaders } from "node:http";
import { GerbangError } from "../errors/catalogue.ts";
import type { AssertionSigner } from "../identity/assertionSigner.ts";
import { upstreamHeaders } from "./upstreamHeaders.ts";

/**
 * The headers an authorized request reaches its upstream with: the client's, stripped, plus the
 * identity and its signed assertion under the rules of the snapshot that authorized it (not of a
 * version activated since). HTTP requests and WebSocket handshakes get the same.
 */
export async function signedIdentityHeaders(request: FastifyRequest, signer: AssertionSigner, proto: "http" | "https"): Promise<OutgoingHttpHeaders> {
  const { principal, upstream, policy, abilities } = request.gerbang;
  if (principal === undefined || upstream === undefined || policy === undefined || abilities === undefined) throw new GerbangError("INTERNAL_ERROR");
  const rules = abilities.get(principal.roles).rules;
  const scopeRules = principal.key === undefined ? undefined : abilities.forScopes(principal.key.scopes).rules;
  const assertion = await signer.assertionFor(principal, rules, policy.version, upstream.name, scopeRules);
  return upstreamHeaders(request.headers, {
    principal,
    policyVersion: policy.version,
    requestId: request.id,
    assertion,
    clientIp: request.ip,
    proto,
    trace: request.gerbang.trace,
  });
}
