// The bench's upstream: answers every request at once with a small JSON body, so the measurement is the proxy's cost.
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 0);
const body = JSON.stringify({ products: [{ id: "prd_1", name: "Organic shallots, 10 kg", priceCents: 2400 }] });
const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => process.stdout.write("ready\n"));
