// Responses stream (issue 19): server-sent events and chunked downloads reach the client part by part
// as the upstream sends them, and a pause longer than the upstream's idle timeout cuts the response.
// A real gateway in front of a node:http upstream that waits for the test before each next part, so
// "the first part arrived before the upstream sent the second" is an order, not a timing.
import t from "tap";
import { createServer, request as httpRequest, type Server, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { serviceGate } from "../helpers/services.ts";

const pgMissing = await serviceGate("postgres");

/** An upstream whose answers are written by the test: each request waits in `open` until the test takes it. */
async function startHeldUpstream(): Promise<{ url: string; next(): Promise<ServerResponse>; close(): Promise<void> }> {
  const waiting: ServerResponse[] = [];
  const takers: Array<(res: ServerResponse) => void> = [];
  const server: Server = createServer((_req, res) => {
    const taker = takers.shift();
    if (taker === undefined) waiting.push(res);
    else taker(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    next: () => {
      const ready = waiting.shift();
      return ready === undefined ? new Promise((resolve) => takers.push(resolve)) : Promise.resolve(ready);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Reading {
  status: Promise<number>;
  /** Resolves when the text received so far includes `text`. */
  until(text: string): Promise<string>;
  /** How the response ended: complete, or cut off before its end. */
  ended: Promise<"complete" | "cut">;
}
function read(url: string): Reading {
  let text = "";
  const waits: Array<{ text: string; resolve: (s: string) => void }> = [];
  let setStatus: (n: number) => void = () => undefined;
  const status = new Promise<number>((r) => (setStatus = r));
  let setEnded: (how: "complete" | "cut") => void = () => undefined;
  const ended = new Promise<"complete" | "cut">((r) => (setEnded = r));
  const req = httpRequest(url, { agent: false }, (res) => {
    setStatus(res.statusCode ?? 0);
    res.on("data", (d: Buffer) => {
      text += d.toString();
      for (const w of waits.filter((x) => text.includes(x.text))) {
        waits.splice(waits.indexOf(w), 1);
        w.resolve(text);
      }
    });
    res.on("end", () => setEnded("complete"));
    res.on("error", () => setEnded("cut"));
    res.on("aborted", () => setEnded("cut"));
  });
  req.on("error", () => setEnded("cut"));
  req.end();
  // A response that ends without the text fails the wait rather than hanging the test.
  const until = (s: string): Promise<string> =>
    text.includes(s)
      ? Promise.resolve(text)
      : Promise.race([new Promise<string>((resolve) => waits.push({ text: s, resolve })), ended.then((how) => Promise.reject(new Error(`the response ended (${how}) without ${JSON.stringify(s)}; got ${JSON.stringify(text)}`)))]);
  return { status, until, ended };
}

t.test("responses stream part by part; an idle upstream is cut after its idle timeout", { skip: pgMissing }, async (t) => {
  const upstream = await startHeldUpstream();
  t.teardown(() => upstream.close());
  const env = await startGatewayEnv({
    postgres: true,
    config: {
      policy: { dir: fileURLToPath(new URL("../fixtures/policies", import.meta.url)), version: "probe-1" },
      upstreams: [
        { name: "events", prefix: "/events", url: upstream.url, timeoutMs: 500, responseIdleTimeoutMs: 5000 },
        { name: "probe", prefix: "/probe", url: upstream.url, timeoutMs: 500 },
      ],
    },
  });
  t.teardown(() => env.close());

  await t.test("server-sent events arrive as the upstream sends them", async (t) => {
    const reading = read(`${env.url}/events/feed`);
    const res = await upstream.next();
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.write("data: one\n\n");
    t.equal(await reading.status, 200);
    await reading.until("data: one");
    t.pass("the first event reached the client while the upstream had sent nothing else");
    // Longer than the upstream's timeoutMs (500 ms): its responseIdleTimeoutMs (5 s) applies between parts.
    await new Promise((r) => setTimeout(r, 1200));
    res.write("data: two\n\n");
    const text = await reading.until("data: two");
    res.end();
    t.equal(await reading.ended, "complete");
    t.equal(text, "data: one\n\ndata: two\n\n", "both events, in order, unchanged");
  });

  await t.test("a chunked download arrives part by part", async (t) => {
    const reading = read(`${env.url}/events/download`);
    const res = await upstream.next();
    res.writeHead(200, { "content-type": "application/octet-stream" });
    for (let i = 0; i < 3; i++) {
      res.write(`part ${i};`);
      await reading.until(`part ${i};`);
    }
    res.end();
    t.equal(await reading.ended, "complete", "each part reached the client before the next was written");
  });

  await t.test("a pause longer than the idle timeout cuts the response", async (t) => {
    const reading = read(`${env.url}/probe/stalls`);
    const res = await upstream.next();
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write("data: one\n\n");
    await reading.until("data: one");
    // timeoutMs (500 ms) is this upstream's idle timeout too; the upstream never writes again.
    t.equal(await reading.ended, "cut", "the client sees the response end unfinished, never a complete one");
    res.destroy();
    t.equal((await fetch(`${env.url}/healthz`)).status, 200, "the gateway carries on");
  });
});
