// The bench's floor: node:http + undici's Pool.stream with nothing else, the leanest maintained way to
// forward in Node. Not a safe proxy (no hop-by-hop handling, no timeouts beyond undici's): a reference only.
import { createServer, type IncomingHttpHeaders } from "node:http";
import { Pool } from "undici";

const [port, upstream] = [Number(process.argv[2] ?? 0), process.argv[3] ?? ""];
const pool = new Pool(upstream, { connections: 128, pipelining: 1 });
const server = createServer((req, res) => {
  const headers: IncomingHttpHeaders = { ...req.headers };
  delete headers.connection;
  delete headers.host;
  pool
    .stream({ path: req.url ?? "/", method: req.method as "GET", headers, body: req.method === "GET" || req.method === "HEAD" ? null : req }, ({ statusCode, headers: answer }) => {
      const out = { ...answer };
      delete out.connection;
      delete out["keep-alive"];
      delete out["transfer-encoding"];
      res.writeHead(statusCode, out as Record<string, string | string[]>);
      return res;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => process.stdout.write("ready\n"));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
