// W3C trace context and OpenTelemetry spans, against real gateway and upstream processes and a local
// OTLP/HTTP receiver the test starts: a trusted caller's trace is continued (the upstream's traceparent
// names the gateway's span, the exported span names the caller's as parent, the audit event the trace
// id); an untrusted caller's trace headers never reach the upstream and a trace of its own starts.
import t from "tap";
import pg from "pg";
import { createServer, type IncomingMessage } from "node:http";
import { gunzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { serviceGate } from "../helpers/services.ts";
import { eventually } from "../helpers/eventually.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
}

/** OTLP/JSON carries ids as hex; accept base64 too, whichever this exporter version sends. */
const hex = (id: string | undefined): string => (id === undefined ? "" : /^[0-9a-f]+$/.test(id) ? id : Buffer.from(id, "base64").toString("hex"));

async function startReceiver(): Promise<{ url: string; spans: OtlpSpan[]; close(): Promise<void> }> {
  const spans: OtlpSpan[] = [];
  const read = async (req: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    return req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body;
  };
  const server = createServer((req, res) => {
    void read(req).then((body) => {
      if (req.url === "/v1/traces" && String(req.headers["content-type"]).startsWith("application/json")) {
        const parsed = JSON.parse(body.toString("utf8")) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };
        for (const rs of parsed.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, close: () => new Promise((r) => server.close(() => r())) };
}

const pgMissing = await serviceGate("postgres");
t.test("trace context: continued from trusted callers, exported over OTLP, recorded in the audit trail", { skip: pgMissing }, async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const env = await startGatewayEnv({
    postgres: true,
    instances: 2,
    config: { tracing: { otlpUrl: receiver.url } },
    // The first instance trusts this test's address; the second trusts no one.
    instanceConfig: (i) => ({ tracing: { otlpUrl: receiver.url, trustIncomingFrom: i === 0 ? ["127.0.0.0/8"] : [] } }),
  });
  t.teardown(() => env.close());
  const db = new pg.Client({ connectionString: env.databaseUrl ?? "" });
  await db.connect();
  t.teardown(() => db.end());

  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentId = "00f067aa0ba902b7";
  const sent = { traceparent: `00-${traceId}-${parentId}-01`, tracestate: "vendor=opaque" };
  const upstreamSaw = async (base: string, headers: Record<string, string>): Promise<{ traceparent?: string; tracestate?: string; requestId: string }> => {
    await env.clearReceived();
    const response = await fetch(`${base}/api/products`, { headers });
    await response.arrayBuffer();
    t.equal(response.status, 200);
    const seen = (await env.received()).at(-1)?.headers ?? {};
    return { ...(seen.traceparent === undefined ? {} : { traceparent: seen.traceparent }), ...(seen.tracestate === undefined ? {} : { tracestate: seen.tracestate }), requestId: response.headers.get("x-request-id") ?? "" };
  };

  const trusted = await upstreamSaw(env.urls[0] ?? "", sent);
  const [, upTrace, upSpan, upFlags] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(trusted.traceparent ?? "") ?? [];
  t.equal(upTrace, traceId, "a trusted caller's trace is continued to the upstream");
  t.not(upSpan, parentId, "with the gateway's own span as the upstream's parent");
  t.equal(upFlags, "01");
  t.equal(trusted.tracestate, "vendor=opaque", "and its tracestate");

  const untrusted = await upstreamSaw(env.urls[1] ?? "", sent);
  t.match(untrusted.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, "an untrusted caller's request starts a trace");
  t.notOk(untrusted.traceparent?.includes(traceId), "the caller's trace id does not reach the upstream");
  t.equal(untrusted.tracestate, undefined, "nor its tracestate");
  const malformed = await upstreamSaw(env.urls[0] ?? "", { traceparent: `00-${"0".repeat(32)}-${parentId}-01` });
  t.notOk(malformed.traceparent?.includes("0".repeat(32)), "an invalid traceparent from a trusted caller starts a new trace");

  let span: OtlpSpan | undefined;
  await eventually(() => (span = receiver.spans.find((s) => hex(s.traceId) === traceId)) !== undefined, 10_000, 100);
  t.ok(span, "the span was exported to the OTLP receiver");
  t.equal(hex(span?.parentSpanId), parentId, "its parent is the caller's span");
  t.equal(hex(span?.spanId), upSpan, "and it is the span the upstream was told of");
  const attribute = (key: string): string | undefined => {
    const v = span?.attributes?.find((a) => a.key === key)?.value;
    return v?.stringValue ?? (v?.intValue === undefined ? undefined : String(v.intValue));
  };
  t.equal(attribute("gerbang.endpoint"), "products.list");
  t.equal(attribute("gerbang.decision"), "allow");
  t.equal(attribute("http.response.status_code"), "200");

  let recorded: string | undefined;
  await eventually(async () => {
    const { rows } = await db.query<{ trace_id: string }>("SELECT trace_id FROM audit_event WHERE request_id = $1", [trusted.requestId]);
    recorded = rows[0]?.trace_id;
    return recorded !== undefined;
  });
  t.equal(recorded, traceId, "the audit event records the trace id");
});
