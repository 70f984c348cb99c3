// A small in-memory marketplace that sits behind the gateway in demos and integration tests.
// It deliberately trusts the gateway's decision (it never re-checks permissions) and instead makes
// what reached it observable: every request is recorded and every API answer echoes the identity.
import Fastify from "fastify";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { createAssertionVerifier } from "../upstream/verifyAssertion.ts";
import { matchesFilter } from "../upstream/dataFilter.ts";
import type { VerifiedIdentity } from "../upstream/verifyAssertion.ts";
import type { JSONWebKeySet } from "jose";
import type { MarketplaceDatabase } from "./marketplaceDatabase.ts";

export interface Shop {
  id: string;
  name: string;
  ownerId: string;
  region: string;
}

export interface Product {
  id: string;
  shopId: string;
  name: string;
  priceCents: number;
}

export type OrderStatus = "pending" | "shipped" | "delivered" | "cancelled";

export interface Order {
  id: string;
  buyerId: string;
  productId: string;
  quantity: number;
  region: string;
  status: OrderStatus;
  shippingAddress: string;
  notes: string | null;
}

export interface InventoryItem {
  productId: string;
  shopId: string;
  quantity: number;
}

export interface DemoSeed {
  shops?: Shop[];
  products?: Product[];
  orders?: Order[];
  inventory?: InventoryItem[];
}

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface DemoUpstreamOptions {
  /** Defaults to 127.0.0.1. */
  host?: string;
  /** Defaults to 0 (a random free port). */
  port?: number;
  /** When set, every /api/* request must carry a valid `x-gerbang-assertion`. */
  jwksUrl?: string;
  /** The gateway's key set itself (the gateway's in-process demo); same effect as `jwksUrl`. */
  jwks?: JSONWebKeySet;
  /**
   * PostgreSQL database for the marketplace's tables (prisma/marketplace, migrated at start): the
   * data is kept there too, so a gateway can read ownership with the Prisma resolver.
   */
  databaseUrl?: string;
  /** Expected assertion audience; defaults to "marketplace". */
  audience?: string;
  logger?: boolean;
}

export interface DemoUpstream {
  url: string;
  close(): Promise<void>;
  /** Replaces each collection present in `data`; collections left out are kept. */
  seed(data: DemoSeed): Promise<void>;
  received(): ReceivedRequest[];
  clearReceived(): void;
}

export interface EchoedIdentity {
  user: string | null;
  roles: string[];
  auth: string | null;
  policy: string | null;
}

const ORDER_STATUSES: readonly string[] = ["pending", "shipped", "delivered", "cancelled"];
const MAX_RECEIVED = 1000;
const DEFAULT_REGION = "global";
const RECEIVED_ROUTE = "/__demo/received";
const ATTRIBUTES_ROUTE = "/.well-known/gerbang/attributes/:subject/:id";

interface Store {
  shops: Map<string, Shop>;
  products: Map<string, Product>;
  orders: Map<string, Order>;
  // Keyed by productId: one stock line per product.
  inventory: Map<string, InventoryItem>;
  // Last number handed out per id prefix; monotonic so a deleted id is never reissued.
  counters: Map<string, number>;
}

export async function startDemoUpstream(options: DemoUpstreamOptions = {}): Promise<DemoUpstream> {
  const store: Store = { shops: new Map(), products: new Map(), orders: new Map(), inventory: new Map(), counters: new Map() };
  const received: ReceivedRequest[] = [];
  const audience = options.audience ?? "marketplace";
  const verify =
    options.jwks !== undefined
      ? createAssertionVerifier({ jwks: options.jwks, audience })
      : options.jwksUrl === undefined
        ? undefined
        : createAssertionVerifier({ jwksUrl: options.jwksUrl, audience });

  // Loaded only when asked for: the in-process demo of `npm start` does without Prisma's client.
  const db = options.databaseUrl === undefined ? null : await (await import("./marketplaceDatabase.ts")).openMarketplaceDatabase(options.databaseUrl);
  if (db !== null) seedStore(store, await db.load());

  const app = Fastify({ logger: options.logger ?? false });
  registerBodyParsers(app);
  registerRecording(app, received);
  if (verify !== undefined) registerAssertionGate(app, verify);
  registerDemoRoutes(app, received);
  registerAttributeRoutes(app, store);
  registerApiRoutes(app, store, db);

  app.setNotFoundHandler((req, reply) => sendJson(req, reply, 404, { error: "not_found" }));
  app.setErrorHandler((error, req, reply) => {
    const statusCode = isRecord(error) ? error.statusCode : undefined;
    const status = typeof statusCode === "number" && statusCode >= 400 && statusCode < 600 ? statusCode : 500;
    if (status >= 500) req.log.error({ err: error }, "demo upstream error");
    // A 5xx says nothing more: its message may be a database driver's.
    if (status >= 500) return sendJson(req, reply, status, { error: "internal_error" });
    const message = error instanceof Error ? error.message : String(error);
    return sendJson(req, reply, status, { error: "bad_request", message });
  });

  const url = await app.listen({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 });
  return {
    url,
    close: async () => {
      await app.close();
      await db?.close();
    },
    seed: async (data) => {
      await db?.replace(data);
      seedStore(store, data);
    },
    received: () => structuredClone(received),
    clearReceived: () => {
      received.length = 0;
    },
  };
}

function registerBodyParsers(app: FastifyInstance): void {
  // The gateway forwards whatever body the client sent, so the demo must accept any content type
  // (keeping non-JSON as raw text) to let tests observe exactly what was forwarded.
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
    done(null, body);
  });
  // Fastify rejects an empty JSON body; a proxied DELETE often carries the header without one.
  const defaultJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") {
      done(null, undefined);
      return;
    }
    defaultJson(req, text, done);
  });
}

function registerRecording(app: FastifyInstance, received: ReceivedRequest[]): void {
  const entries = new WeakMap<FastifyRequest, ReceivedRequest>();
  // Recorded at onRequest so order matches arrival and requests that later fail are still seen.
  app.addHook("onRequest", async (req) => {
    if (req.routeOptions.url === RECEIVED_ROUTE) return;
    const entry: ReceivedRequest = { method: req.method, url: req.url, headers: { ...req.headers }, body: undefined };
    received.push(entry);
    if (received.length > MAX_RECEIVED) received.splice(0, received.length - MAX_RECEIVED);
    entries.set(req, entry);
  });
  // The body only exists after parsing, so it is filled in on the already-recorded entry.
  app.addHook("preValidation", async (req) => {
    const entry = entries.get(req);
    if (entry !== undefined) entry.body = req.body;
  });
}

// The verified identity of each /api request, for the list endpoints that filter by its rules.
const identities = new WeakMap<FastifyRequest, VerifiedIdentity>();

function registerAssertionGate(app: FastifyInstance, verify: (token: string) => Promise<VerifiedIdentity>): void {
  app.addHook("preHandler", async (req, reply) => {
    if (!isApiRequest(req)) return;
    const token = headerValue(req.headers["x-gerbang-assertion"]);
    let identity: VerifiedIdentity;
    try {
      identity = await verify(token ?? "");
    } catch (error) {
      const code = error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : "ASSERTION_INVALID";
      return rejectAssertion(req, reply, code);
    }
    // The plain headers are what a naive upstream would read; they must say the same thing as the
    // signed assertion or a forged header could ride along with a genuine token.
    const echoed = echoedIdentity(req);
    if (identity.subject !== (echoed.user ?? "anonymous") || !sameRoles(identity.roles, echoed.roles)) {
      return rejectAssertion(req, reply, "ASSERTION_HEADER_MISMATCH");
    }
    identities.set(req, identity);
    return undefined;
  });
}

function rejectAssertion(req: FastifyRequest, reply: FastifyReply, code: string): FastifyReply {
  req.log.warn({ code }, "assertion rejected");
  // The body is fixed by contract; the reason goes in a header so a person using curl can see it.
  return reply.code(401).header("x-demo-assertion-error", code).send({ error: "assertion_invalid" });
}

function registerDemoRoutes(app: FastifyInstance, received: ReceivedRequest[]): void {
  app.get(RECEIVED_ROUTE, async () => received);
  app.delete(RECEIVED_ROUTE, async () => {
    received.length = 0;
    return { cleared: true };
  });
}

function registerAttributeRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Params: { subject: string; id: string } }>(ATTRIBUTES_ROUTE, async (req, reply) => {
    const attributes = resourceAttributes(store, req.params.subject, req.params.id);
    if (attributes === undefined) return reply.code(404).send({ error: "not_found" });
    return attributes;
  });
}

// Only the attributes policies may condition on are exposed, mirroring what a real service
// would be willing to disclose to the gateway.
function resourceAttributes(store: Store, subject: string, id: string): Record<string, unknown> | undefined {
  switch (subject) {
    case "Shop": {
      const shop = store.shops.get(id);
      return shop && { id: shop.id, ownerId: shop.ownerId, region: shop.region };
    }
    case "Order": {
      const order = store.orders.get(id);
      return order && { id: order.id, buyerId: order.buyerId, region: order.region, status: order.status };
    }
    case "Product": {
      const product = store.products.get(id);
      return product && { id: product.id, shopId: product.shopId };
    }
    default:
      return undefined;
  }
}

type IdParams<K extends string> = { Params: Record<K, string> };

/**
 * The records of a listing the caller may read, by the assertion's rules (gerbang/upstream): the
 * gateway only checked that some could be. Without verified assertions there are no rules to apply,
 * so a listing is refused rather than returning everything.
 */
function readable<T extends object>(req: FastifyRequest, subjectType: string, records: Iterable<T>): T[] | null {
  const identity = identities.get(req);
  if (identity === undefined) return null;
  const filter = identity.filter("read", subjectType);
  return [...records].filter((record) => matchesFilter(filter, record as Record<string, unknown>));
}

function listingNeedsAssertions(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendJson(req, reply, 501, { error: "listing_needs_assertions", message: "start the demo upstream with --jwks-url to serve listings" });
}

// Nullable columns of the marketplace's tables: prismaWhere keeps NULL out of comparisons on them.
const ORDER_NULLABLE = ["region", "shippingAddress", "notes"];

/** Every write goes to the database (when there is one) before the memory the reads use. */
function registerApiRoutes(app: FastifyInstance, store: Store, db: MarketplaceDatabase | null): void {
  app.get<{ Querystring: { shopId?: string } }>("/api/products", async (req, reply) => {
    const { shopId } = req.query;
    const products = [...store.products.values()].filter((p) => shopId === undefined || p.shopId === shopId);
    return sendJson(req, reply, 200, { products });
  });

  app.get<IdParams<"productId">>("/api/products/:productId", async (req, reply) => {
    const product = store.products.get(req.params.productId);
    return product ? sendJson(req, reply, 200, { ...product }) : notFound(req, reply);
  });

  app.post("/api/shops", async (req, reply) => {
    const ownerId = echoedIdentity(req).user;
    if (ownerId === null) return sendJson(req, reply, 400, { error: "user_required" });
    const body = asRecord(req.body);
    if (!isNonEmptyString(body.name)) return invalidBody(req, reply, "name must be a non-empty string");
    if (body.region !== undefined && !isNonEmptyString(body.region)) {
      return invalidBody(req, reply, "region must be a non-empty string");
    }
    const shop: Shop = { id: nextId(store, "shop", store.shops), name: body.name, ownerId, region: body.region ?? DEFAULT_REGION };
    await db?.prisma.shop.create({ data: shop });
    store.shops.set(shop.id, shop);
    return sendJson(req, reply, 201, { ...shop });
  });

  app.get<IdParams<"shopId">>("/api/shops/:shopId", async (req, reply) => {
    const shop = store.shops.get(req.params.shopId);
    return shop ? sendJson(req, reply, 200, { ...shop }) : notFound(req, reply);
  });

  app.patch<IdParams<"shopId">>("/api/shops/:shopId", async (req, reply) => {
    const shop = store.shops.get(req.params.shopId);
    if (!shop) return notFound(req, reply);
    const body = asRecord(req.body);
    if (body.name !== undefined && !isNonEmptyString(body.name)) return invalidBody(req, reply, "name must be a non-empty string");
    if (body.region !== undefined && !isNonEmptyString(body.region)) {
      return invalidBody(req, reply, "region must be a non-empty string");
    }
    // id and ownerId are not editable: ownership changes would bypass the gateway's owner checks.
    const changes = { ...(body.name === undefined ? {} : { name: body.name }), ...(body.region === undefined ? {} : { region: body.region }) };
    await db?.prisma.shop.update({ where: { id: shop.id }, data: changes });
    Object.assign(shop, changes);
    return sendJson(req, reply, 200, { ...shop });
  });

  app.delete<IdParams<"shopId">>("/api/shops/:shopId", async (req, reply) => {
    const { shopId } = req.params;
    if (!store.shops.has(shopId)) return notFound(req, reply);
    await db?.prisma.$transaction([db.prisma.shop.delete({ where: { id: shopId } }), db.prisma.product.deleteMany({ where: { shopId } }), db.prisma.inventory.deleteMany({ where: { shopId } })]);
    store.shops.delete(shopId);
    for (const [id, product] of store.products) if (product.shopId === shopId) store.products.delete(id);
    for (const [id, item] of store.inventory) if (item.shopId === shopId) store.inventory.delete(id);
    return sendJson(req, reply, 200, { deleted: shopId });
  });

  app.post<IdParams<"shopId">>("/api/shops/:shopId/products", async (req, reply) => {
    const shop = store.shops.get(req.params.shopId);
    if (!shop) return notFound(req, reply);
    const body = asRecord(req.body);
    if (!isNonEmptyString(body.name)) return invalidBody(req, reply, "name must be a non-empty string");
    if (!isNonNegativeInteger(body.priceCents)) return invalidBody(req, reply, "priceCents must be a non-negative integer");
    const product: Product = { id: nextId(store, "prd", store.products), shopId: shop.id, name: body.name, priceCents: body.priceCents };
    await db?.prisma.product.create({ data: product });
    store.products.set(product.id, product);
    return sendJson(req, reply, 201, { ...product });
  });

  app.post("/api/orders", async (req, reply) => {
    const buyerId = echoedIdentity(req).user;
    if (buyerId === null) return sendJson(req, reply, 400, { error: "user_required" });
    const body = asRecord(req.body);
    if (!isNonEmptyString(body.productId)) return invalidBody(req, reply, "productId must be a non-empty string");
    const product = store.products.get(body.productId);
    if (!product) return invalidBody(req, reply, `unknown productId ${body.productId}`);
    if (!isNonNegativeInteger(body.quantity) || body.quantity < 1) {
      return invalidBody(req, reply, "quantity must be a positive integer");
    }
    if (!isNonEmptyString(body.shippingAddress)) return invalidBody(req, reply, "shippingAddress must be a non-empty string");
    if (body.region !== undefined && !isNonEmptyString(body.region)) {
      return invalidBody(req, reply, "region must be a non-empty string");
    }
    const order: Order = {
      id: nextId(store, "ord", store.orders),
      buyerId,
      productId: product.id,
      quantity: body.quantity,
      // An order ships within its seller's region unless the buyer says otherwise.
      region: body.region ?? store.shops.get(product.shopId)?.region ?? DEFAULT_REGION,
      status: "pending",
      shippingAddress: body.shippingAddress,
      notes: null,
    };
    await db?.prisma.order.create({ data: order });
    store.orders.set(order.id, order);
    return sendJson(req, reply, 201, { ...order });
  });

  app.get("/api/orders", async (req, reply) => {
    const identity = identities.get(req);
    if (db !== null && identity !== undefined) {
      // The listing as a service on Prisma writes it: the caller's rules as the query's where.
      const rows = await db.prisma.order.findMany({ where: identity.prismaWhere("read", "Order", { nullable: ORDER_NULLABLE }), orderBy: { id: "asc" } });
      return sendJson(req, reply, 200, { orders: rows.map((row) => store.orders.get(row.id) ?? row) });
    }
    const orders = readable(req, "Order", store.orders.values());
    return orders === null ? listingNeedsAssertions(req, reply) : sendJson(req, reply, 200, { orders });
  });

  app.get("/api/shops", async (req, reply) => {
    const shops = readable(req, "Shop", store.shops.values());
    return shops === null ? listingNeedsAssertions(req, reply) : sendJson(req, reply, 200, { shops });
  });

  app.get<IdParams<"orderId">>("/api/orders/:orderId", async (req, reply) => {
    const order = store.orders.get(req.params.orderId);
    return order ? sendJson(req, reply, 200, { ...order }) : notFound(req, reply);
  });

  app.patch<IdParams<"orderId">>("/api/orders/:orderId", async (req, reply) => {
    const order = store.orders.get(req.params.orderId);
    if (!order) return notFound(req, reply);
    const body = asRecord(req.body);
    if (body.shippingAddress !== undefined && !isNonEmptyString(body.shippingAddress)) {
      return invalidBody(req, reply, "shippingAddress must be a non-empty string");
    }
    if (body.status !== undefined && !isOrderStatus(body.status)) {
      return invalidBody(req, reply, `status must be one of ${ORDER_STATUSES.join(", ")}`);
    }
    if (body.notes !== undefined && body.notes !== null && typeof body.notes !== "string") {
      return invalidBody(req, reply, "notes must be a string or null");
    }
    const changes = {
      ...(body.shippingAddress === undefined ? {} : { shippingAddress: body.shippingAddress }),
      ...(body.status === undefined ? {} : { status: body.status }),
      ...(body.notes === undefined ? {} : { notes: body.notes }),
    };
    await db?.prisma.order.update({ where: { id: order.id }, data: changes });
    Object.assign(order, changes);
    return sendJson(req, reply, 200, { ...order });
  });

  app.get<{ Querystring: { shopId?: string } }>("/api/inventory", async (req, reply) => {
    const { shopId } = req.query;
    const inventory = [...store.inventory.values()].filter((i) => shopId === undefined || i.shopId === shopId);
    return sendJson(req, reply, 200, { inventory });
  });

  app.get("/api/admin/stats", async (req, reply) =>
    sendJson(req, reply, 200, {
      shops: store.shops.size,
      products: store.products.size,
      orders: store.orders.size,
      inventoryItems: store.inventory.size,
    }),
  );
  // Any other admin operation simply succeeds: the demo exists to show the gateway gating it.
  const adminAny = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    sendJson(req, reply, 200, { ok: true, method: req.method, path: pathOf(req.url) });
  app.all("/api/admin", adminAny);
  app.all("/api/admin/*", adminAny);
}

function seedStore(store: Store, data: DemoSeed): void {
  // Copies, so a test mutating its fixture afterwards cannot change the service's state.
  if (data.shops) store.shops = new Map(data.shops.map((s) => [s.id, { ...s }]));
  if (data.products) store.products = new Map(data.products.map((p) => [p.id, { ...p }]));
  if (data.orders) store.orders = new Map(data.orders.map((o) => [o.id, { ...o }]));
  if (data.inventory) store.inventory = new Map(data.inventory.map((i) => [i.productId, { ...i }]));
}

// Skips ids already taken so seeded fixtures like `shop_1` never collide with created ones.
function nextId(store: Store, prefix: string, taken: Map<string, unknown>): string {
  let n = (store.counters.get(prefix) ?? 0) + 1;
  while (taken.has(`${prefix}_${n}`)) n += 1;
  store.counters.set(prefix, n);
  return `${prefix}_${n}`;
}

function sendJson(req: FastifyRequest, reply: FastifyReply, status: number, body: Record<string, unknown>): FastifyReply {
  const payload = isApiRequest(req) ? { ...body, gerbang: echoedIdentity(req) } : body;
  return reply.code(status).send(payload);
}

function notFound(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendJson(req, reply, 404, { error: "not_found" });
}

function invalidBody(req: FastifyRequest, reply: FastifyReply, message: string): FastifyReply {
  return sendJson(req, reply, 400, { error: "invalid_body", message });
}

function echoedIdentity(req: FastifyRequest): EchoedIdentity {
  const roles = headerValue(req.headers["x-gerbang-roles"]);
  return {
    user: headerValue(req.headers["x-gerbang-user"]) ?? null,
    roles: roles === undefined ? [] : roles.split(",").map((r) => r.trim()).filter((r) => r !== ""),
    auth: headerValue(req.headers["x-gerbang-auth"]) ?? null,
    policy: headerValue(req.headers["x-gerbang-policy"]) ?? null,
  };
}

// Empty values count as absent so `x-gerbang-user:` cannot pose as a distinct (empty) user.
function headerValue(value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(", ") : value;
  return joined === undefined || joined.trim() === "" ? undefined : joined.trim();
}

function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((role, i) => role === right[i]);
}

// Routed requests are classified by their route pattern (immune to odd encodings of the raw URL);
// unrouted ones by path, so an unknown /api path still gets the /api treatment.
function isApiRequest(req: FastifyRequest): boolean {
  const route = req.routeOptions.url;
  const path = route ?? pathOf(req.url);
  return path === "/api" || path.startsWith("/api/");
}

function pathOf(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asRecord(body: unknown): Record<string, unknown> {
  return isRecord(body) ? body : {};
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value.trim() !== "";
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isOrderStatus(value: unknown): value is OrderStatus {
  return typeof value === "string" && ORDER_STATUSES.includes(value);
}
