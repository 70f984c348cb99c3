// Request bodies the policy does not read stream to the upstream as they arrive (issue 19), against a
// real gateway and a node:http upstream that reports what it saw: the first bytes before the client
// finished, a body cut at the limit seen as aborted (never complete), a declared oversize refused
// before anything is forwarded, a client that hangs up, the per-address budget, and a 1 GiB upload
// through the gateway with its resident memory sampled all along.
import t from "tap";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { serviceGate } from "../helpers/services.ts";

const pgMissing = await serviceGate("postgres");
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const KIB = 1024;
const MIB = 1024 * KIB;

interface Seen {
  url: string;
  headers: IncomingMessage["headers"];
  bytes: number;
  outcome: "pending" | "complete" | "aborted";
}
/** An upstream that counts each request's body bytes and says how it ended; it answers once the body is complete. */
async function startCountingUpstream(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const entry: Seen = { url: req.url ?? "", headers: req.headers, bytes: 0, outcome: "pending" };
    seen.push(entry);
    req.on("data", (part: Buffer) => (entry.bytes += part.length));
    req.on("end", () => {
      entry.outcome = "complete";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ bytes: entry.bytes }));
    });
    req.on("error", () => undefined);
    req.on("aborted", () => (entry.outcome = "aborted"));
    req.on("close", () => {
      if (entry.outcome === "pending") entry.outcome = "aborted";
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}
/** A POST whose body the test writes part by part (`send` decides when), chunked unless `length` is given. */
function upload(base: string, path: string, options: { length?: number; type?: string }, send: (write: (part: Buffer) => Promise<boolean>, end: () => void) => Promise<void>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const headers: Record<string, string> = { "content-type": options.type ?? "application/octet-stream" };
    if (options.length !== undefined) headers["content-length"] = String(options.length);
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers, agent: false }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    let answered = false;
    req.on("response", () => (answered = true));
    const write = (part: Buffer): Promise<boolean> =>
      new Promise((done) => {
        if (answered || req.destroyed) return done(false);
        if (req.write(part)) return done(true);
        // One pair of listeners per wait, removed together: a gigabyte of waits must not pile them up.
        const drained = (): void => {
          req.removeListener("close", closed);
          done(true);
        };
        const closed = (): void => {
          req.removeListener("drain", drained);
          done(false);
        };
        req.once("drain", drained);
        req.once("close", closed);
      });
    void send(write, () => req.end()).catch(reject);
  });
}

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

t.test("bodies the policy does not read stream to the upstream as they arrive", { skip: pgMissing }, async (t) => {
  const upstream = await startCountingUpstream();
  t.teardown(() => upstream.close());
  const env = await startGatewayEnv({
    postgres: true,
    // One address's budget: a form body (read whole) of 300 KiB fits, two at once do not.
    serverConfig: { bodyLimitBytes: 1 * MIB, bufferedBodyLimitBytes: 512 * KIB, maxInFlightBodyBytesPerAddress: 400 * KIB, requestTimeoutMs: 120_000 },
    config: {
      policy: { dir: fileURLToPath(new URL("../fixtures/policies", import.meta.url)), version: "probe-1" },
      upstreams: [
        { name: "probe", prefix: "/probe", url: upstream.url, timeoutMs: 10_000, bodyLimitBytes: 256 * KIB },
        { name: "uploads", prefix: "/uploads", url: upstream.url, timeoutMs: 60_000, bodyLimitBytes: 2 * 1024 * MIB },
      ],
    },
  });
  t.teardown(() => env.close());
  const last = (): Seen | undefined => upstream.seen.at(-1);

  await t.test("the first bytes reach the upstream before the client has sent the rest", async (t) => {
    const before = upstream.seen.length;
    const answer = await upload(env.url, "/probe/first", { length: 128 * KIB }, async (write, end) => {
      await write(Buffer.alloc(64 * KIB, 97));
      for (const deadline = Date.now() + 5000; (upstream.seen[before]?.bytes ?? 0) === 0 && Date.now() < deadline; ) await sleep(20);
      t.ok((upstream.seen[before]?.bytes ?? 0) > 0, "the upstream is reading while the client still holds half of the body");
      t.equal(upstream.seen[before]?.outcome, "pending");
      await write(Buffer.alloc(64 * KIB, 98));
      end();
    });
    t.equal(answer.status, 200);
    t.same(JSON.parse(answer.body), { bytes: 128 * KIB }, "and then all of it");
    t.equal(last()?.headers["content-length"], String(128 * KIB), "with the length the client declared");
    t.equal(last()?.headers["transfer-encoding"], undefined);
  });

  await t.test("crossing the limit mid-stream: 413 to the client, an aborted request at the upstream", async (t) => {
    const before = upstream.seen.length;
    const answer = await upload(env.url, "/probe/chunked", {}, async (write, end) => {
      for (let i = 0; i < 16; i++) if (!(await write(Buffer.alloc(32 * KIB, 99)))) return;
      end();
    });
    t.equal(answer.status, 413);
    t.match(JSON.parse(answer.body), { error: { code: "PAYLOAD_TOO_LARGE" } });
    t.equal(answer.headers.connection, "close", "the connection is closed: the rest of the body is never read");
    // The body may cross the limit before undici has even sent the request's head (a loaded machine):
    // then the upstream never hears of it, which is as good. What it must never see is a complete request.
    for (const deadline = Date.now() + 3000; (upstream.seen[before]?.outcome ?? "pending") === "pending" && Date.now() < deadline; ) await sleep(20);
    const seen = upstream.seen[before];
    if (seen === undefined) t.pass("the upstream never heard of the request (the limit was crossed before it was sent)");
    else {
      t.equal(seen.outcome, "aborted", "the upstream saw the request break off, never a complete one");
      t.ok(seen.bytes <= 256 * KIB, `and at most the limit of it (${seen.bytes} bytes)`);
      t.equal(seen.headers["transfer-encoding"], "chunked", "framed as the client framed it");
    }
    const after = await fetch(`${env.url}/probe/after`);
    t.equal(after.status, 200, "the client's fault does not count against the upstream: its circuit stays closed");
  });

  await t.test("a declared length over the limit: 413 before a byte is read or forwarded", async (t) => {
    const before = upstream.seen.length;
    const answer = await upload(env.url, "/probe/declared", { length: 256 * KIB + 1 }, async (write, end) => {
      await write(Buffer.alloc(1024, 100));
      end();
    });
    t.equal(answer.status, 413);
    await sleep(100);
    t.equal(upstream.seen.length, before, "the upstream saw nothing");
  });

  await t.test("a client that hangs up mid-upload: the upstream's request is aborted, the gateway carries on", async (t) => {
    const before = upstream.seen.length;
    const url = new URL("/probe/hangup", env.url);
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { "content-type": "application/octet-stream", "content-length": String(200 * KIB) }, agent: false });
    req.on("error", () => undefined);
    req.write(Buffer.alloc(64 * KIB, 101));
    for (const deadline = Date.now() + 5000; (upstream.seen[before]?.bytes ?? 0) === 0 && Date.now() < deadline; ) await sleep(20);
    req.destroy();
    for (const deadline = Date.now() + 5000; upstream.seen[before]?.outcome === "pending" && Date.now() < deadline; ) await sleep(20);
    t.equal(upstream.seen[before]?.outcome, "aborted", "the upstream saw the body break off");
    const next = await upload(env.url, "/probe/next", { length: 100 * KIB }, async (write, end) => {
      await write(Buffer.alloc(100 * KIB, 102));
      end();
    });
    t.equal(next.status, 200, "the next upload goes through (nothing leaked, the circuit closed)");
  });

  await t.test("bodies read whole count against one address's budget", async (t) => {
    const form = `x=${"x".repeat(300 * KIB)}`;
    const head = (i: number): string => `POST /uploads/form${i} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nConnection: close\r\n\r\n`;
    const { connect } = await import("node:net");
    const url = new URL(env.url);
    const open = (i: number): Promise<{ received: () => string; write: (s: string) => void; close: () => void }> =>
      new Promise((resolve) => {
        let data = "";
        const socket = connect({ host: url.hostname, port: Number(url.port) }, () => {
          socket.write(head(i) + form.slice(0, 1000));
          resolve({ received: () => data, write: (s) => socket.write(s), close: () => socket.destroy() });
        });
        socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
        socket.on("error", () => undefined);
      });
    const first = await open(1);
    await sleep(300);
    const second = await open(2);
    for (const deadline = Date.now() + 5000; second.received() === "" && Date.now() < deadline; ) await sleep(20);
    t.match(second.received(), /^HTTP\/1\.1 503/, "the second from the same address does not fit");
    t.match(second.received(), /"reason":"BODY_BUDGET_ADDRESS"/);
    t.equal(first.received(), "", "while the first is still being read");
    first.write(form.slice(1000));
    for (const deadline = Date.now() + 5000; first.received() === "" && Date.now() < deadline; ) await sleep(20);
    t.match(first.received(), /^HTTP\/1\.1 200/, "and the first is forwarded whole");
    first.close();
    second.close();
  });

  await t.test("a 1 GiB upload streams through with the gateway's memory flat", async (t) => {
    const pid = env.gateway.child.pid ?? 0;
    const before = upstream.seen.length;
    const part = Buffer.alloc(MIB, 103);
    const total = 1024;
    const samples: number[] = [];
    const baseline = rssMiB(pid);
    const sampler = setInterval(() => samples.push(rssMiB(pid)), 100);
    const answer = await upload(env.url, "/uploads/big", { length: total * MIB }, async (write, end) => {
      for (let i = 0; i < total; i++) if (!(await write(part))) return;
      end();
    });
    clearInterval(sampler);
    t.equal(answer.status, 200, answer.body);
    t.same(JSON.parse(answer.body), { bytes: total * MIB }, "the upstream got every byte");
    t.equal(upstream.seen[before]?.outcome, "complete");
    const peak = Math.max(...samples);
    // docs/operations.md states the bound: a streamed body adds at most this much resident memory.
    // Measured: a sawtooth 25–100 MiB above the idle process (V8 collecting the parts, later under a
    // busy CI machine), the same through the whole gigabyte. Buffering would add the gigabyte itself.
    t.ok(peak - baseline < 192, `RSS ${baseline.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at most while 1 GiB went through (${samples.length} samples)`);
  });
});
