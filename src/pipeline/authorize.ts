import type { FastifyRequest } from "fastify";
import { GerbangError } from "../errors/catalogue.ts";
import type { Decision } from "../policy/evaluate.ts";
import { blockedFields, decideEndpoint, deniedStatus, paramAttributes, precheckEndpoint, type RequestPrincipal } from "../policy/decideRequest.ts";
import type { Principal } from "../auth/principal.ts";
import type { UpstreamConfig } from "../config/schema.ts";
import type { PolicyStore } from "../policy/policyStore.ts";
import type { AttributeResolver } from "../resolvers/attributeResolver.ts";
import { WWW_AUTHENTICATE } from "./authenticate.ts";
import { formHasMethodOverride, methodOverrideRefused } from "./methodOverride.ts";

export interface AuthorizeOptions {
  policies: PolicyStore;
  resolver: AttributeResolver;
  /** Roles whose 403s carry the decision's details (policy.denialDetailsFor). */
  denialDetailsFor?: readonly string[];
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
const JSON_TYPE = /^application\/(?:[a-z0-9.+-]*\+)?json\s*(?:;|$)/i;

/**
 * Stage: authorize, default deny, in two steps. The precheck runs before the body is read: the
 * endpoint map turns method + canonical path into an action on a subject, and if no rule of the
 * principal's ability could allow it the request is refused without buffering a byte. The decision
 * runs after: attributes come from the path, the JSON body or the owning upstream's resolver, and the
 * ability for the principal's role set under the active version decides, field by field if asked.
 */
export function createAuthorize(options: AuthorizeOptions): {
  select: (request: FastifyRequest) => void;
  selectBound: (request: FastifyRequest, endpointId: string) => void;
  precheck: (request: FastifyRequest) => void;
  decide: (request: FastifyRequest) => Promise<void>;
  recheck: (principal: Principal, method: string, path: string, upstream: UpstreamConfig, input?: { resource: Record<string, unknown>; fields: readonly string[] }) => Promise<{ allowed: boolean; reason: string }>;
} {
  // Split from the precheck so the rate-limit stage between them can see the endpoint (its own limit).
  const select = (request: FastifyRequest): void => {
    const state = request.gerbang;
    if (state.path === undefined) throw new GerbangError("INTERNAL_ERROR");
    // One snapshot for the whole request, even if a new version is activated while the body streams in.
    const { policy, abilities } = options.policies.current;
    state.policy = policy;
    state.abilities = abilities;
    const match = policy.matcher.match(request.method, state.path);
    if (match !== null) state.endpoint = match;
  };

  const precheck = (request: FastifyRequest): void => {
    const { principal, abilities, endpoint: match } = request.gerbang;
    if (principal === undefined || abilities === undefined) throw new GerbangError("INTERNAL_ERROR");
    if (match === undefined) return deny(request, { allowed: false, reason: "ENDPOINT_NOT_MAPPED", ruleId: null }, false);
    const refused = precheckEndpoint(abilities, asked(principal), match);
    if (refused === null) return;
    const held = heldPrincipal(principal);
    if (held !== null && precheckEndpoint(abilities, held, match) === null) return needsSecondFactor(request, principal);
    return deny(request, refused, principal.authMethod === "anonymous");
  };

  const decide = async (request: FastifyRequest): Promise<void> => {
    const state = request.gerbang;
    const { principal, upstream, abilities, endpoint: match } = state;
    if (principal === undefined || abilities === undefined || match === undefined) throw new GerbangError("INTERNAL_ERROR");
    const { spec } = match.endpoint;
    const anonymous = principal.authMethod === "anonymous";
    if (formHasMethodOverride(request.headers["content-type"], request.body)) throw methodOverrideRefused();

    const from = spec.resource?.from ?? "none";
    const needsBody = from === "body" || spec.fields === "body";
    const body = needsBody ? jsonBody(request) : undefined;
    let resource: Record<string, unknown> = {};
    if (from === "params") resource = paramAttributes(match.params);
    else if (from === "body") resource = body ?? {};
    else if (from === "resolver") {
      const id = match.params[spec.resource?.id ?? ""];
      // The gateway's own routes have no upstream to ask: a policy that maps one to a resolver fails closed.
      if (id === undefined || upstream === undefined) throw new GerbangError("INTERNAL_ERROR");
      const resolved = await options.resolver.resolve(upstream, spec.subject, id, { fresh: !SAFE.has(request.method) });
      if (!resolved.found) throw new GerbangError("RESOURCE_NOT_FOUND");
      resource = resolved.attributes;
    }
    const fields = spec.fields === "body" ? Object.keys(body ?? {}) : [];
    const decision = decideEndpoint(abilities, asked(principal), spec, resource, fields);
    state.decisionInput = { resource, resourceFrom: from, fields, fieldsRead: spec.fields === "body" };
    if (!decision.allowed) {
      const held = heldPrincipal(principal);
      if (held !== null && decideEndpoint(abilities, held, spec, resource, fields).allowed) return needsSecondFactor(request, principal);
      if (decision.field !== undefined) state.blockedFields = blockedFields(abilities, asked(principal), spec, resource, fields);
      return deny(request, decision, anonymous);
    }
    state.decision = decision;
  };
  const detailsFor = new Set(options.denialDetailsFor ?? []);
  /** The policy's reasons for a 403, for the roles that may see them; everyone else gets the reason id only. */
  const deny = (request: FastifyRequest, decision: Decision, anonymous: boolean): never => {
    const state = request.gerbang;
    const shown = detailsFor.size > 0 && (state.principal?.roles ?? []).some((r) => detailsFor.has(r));
    const details = shown
      ? { version: state.policy?.version ?? null, endpoint: state.endpoint?.endpoint.spec.id ?? null, rule: decision.ruleId, blockedFields: state.blockedFields ?? (decision.field === undefined ? [] : [decision.field]) }
      : undefined;
    return refuse(request, decision, anonymous, details);
  };
  /**
   * For the gateway's own routes: select, then accept only the endpoint meant for this route, so a broad
   * pattern (`/**`) of some version that happens to match never authorizes it.
   */
  const selectBound = (request: FastifyRequest, endpointId: string): void => {
    select(request);
    if (request.gerbang.endpoint?.endpoint.spec.id === endpointId) return;
    delete request.gerbang.endpoint;
    deny(request, { allowed: false, reason: "ENDPOINT_NOT_MAPPED", ruleId: null }, false);
  };
  /**
   * The decision again, for a connection authorized earlier and still open (a WebSocket, an event
   * stream): the active version, the principal as authenticated now; the resource from the path, the
   * resolver (fresh), or the body the first decision read (`input`; a WebSocket handshake has none).
   */
  const recheck = async (principal: Principal, method: string, path: string, upstream: UpstreamConfig, input?: { resource: Record<string, unknown>; fields: readonly string[] }): Promise<{ allowed: boolean; reason: string }> => {
    const { policy, abilities } = options.policies.current;
    const match = policy.matcher.match(method, path);
    if (match === null) return { allowed: false, reason: "ENDPOINT_NOT_MAPPED" };
    const refused = precheckEndpoint(abilities, asked(principal), match);
    if (refused !== null) return refused;
    const { spec } = match.endpoint;
    let resource: Record<string, unknown> = {};
    if (spec.resource?.from === "params") resource = paramAttributes(match.params);
    else if (spec.resource?.from === "body") resource = input?.resource ?? {};
    else if (spec.resource?.from === "resolver") {
      const id = match.params[spec.resource.id ?? ""];
      if (id === undefined) return { allowed: false, reason: "RESOURCE_NOT_FOUND" };
      const resolved = await options.resolver.resolve(upstream, spec.subject, id, { fresh: true });
      if (!resolved.found) return { allowed: false, reason: "RESOURCE_NOT_FOUND" };
      resource = resolved.attributes;
    }
    return decideEndpoint(abilities, asked(principal), spec, resource, spec.fields === "body" ? (input?.fields ?? []) : []);
  };
  return { select, selectBound, precheck, decide, recheck };
}

/** After a write through the gateway, the resource's cached attributes may be stale: drop them. */
export function createInvalidateAfterWrite(resolver: AttributeResolver): (request: FastifyRequest, reply: unknown, done: () => void) => void {
  return (request, _reply, done) => {
    const { endpoint, upstream, decision } = request.gerbang;
    const spec = endpoint?.endpoint.spec;
    if (spec?.resource?.from === "resolver" && upstream !== undefined && decision?.allowed === true && !SAFE.has(request.method)) {
      const id = endpoint?.params[spec.resource.id ?? ""];
      if (id !== undefined) resolver.invalidate(upstream, spec.subject, id);
    }
    done();
  };
}

function refuse(request: FastifyRequest, decision: Decision, anonymous: boolean, details: Record<string, unknown> | undefined): never {
  request.gerbang.decision = decision;
  if (deniedStatus(decision, anonymous) === 401) {
    throw new GerbangError("UNAUTHENTICATED", { reason: decision.reason, headers: { "www-authenticate": WWW_AUTHENTICATE } });
  }
  const message = decision.field === undefined ? undefined : `The policy does not allow writing the field "${decision.field}".`;
  throw new GerbangError("FORBIDDEN", { reason: decision.reason, ...(message === undefined ? {} : { message }), ...(details === undefined ? {} : { details }) });
}

/** The principal with every role its user holds, when some are withheld for want of a second factor. */
function heldPrincipal(principal: Principal): RequestPrincipal | null {
  if (principal.heldRoles === undefined || principal.withheldRoles === undefined || principal.withheldRoles.length === 0) return null;
  return { ...asked(principal), roles: principal.heldRoles };
}

/** What the user's withheld roles would allow is refused with a reason that says how to get it. */
function needsSecondFactor(request: FastifyRequest, principal: Principal): never {
  request.gerbang.decision = { allowed: false, reason: "SECOND_FACTOR_REQUIRED", ruleId: null };
  const roles = (principal.withheldRoles ?? []).join(", ");
  const how = principal.authMethod === "api-key" ? "An API key cannot present a second factor; use a session signed in with one." : "Sign in with your second factor (TOTP or a backup code), or enrol one at /api/auth/two-factor/enable.";
  throw new GerbangError("FORBIDDEN", { reason: "SECOND_FACTOR_REQUIRED", message: `This request needs the role ${roles}, which acts only with a second factor. ${how}` });
}

/** The principal as the policy sees it; the role and scope arrays keep their identity (the ability cache keys on it). */
function asked(principal: Principal): RequestPrincipal {
  return { roles: principal.roles, attributes: principal.attributes, scopes: principal.key?.scopes ?? null, anonymous: principal.authMethod === "anonymous" };
}

/** The body as a JSON object for policy evaluation; the upstream still receives the original bytes. */
function jsonBody(request: FastifyRequest): Record<string, unknown> | undefined {
  const raw = request.body;
  if (!(raw instanceof Buffer) || raw.length === 0) return undefined;
  const type = request.headers["content-type"];
  // The policy must read the body the way the upstream will: only declared JSON is accepted.
  if (typeof type !== "string" || !JSON_TYPE.test(type)) throw new GerbangError("UNSUPPORTED_MEDIA_TYPE");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch {
    throw new GerbangError("INVALID_JSON_BODY");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new GerbangError("INVALID_JSON_BODY", { message: "The request body must be a JSON object." });
  }
  return parsed as Record<string, unknown>;
}
