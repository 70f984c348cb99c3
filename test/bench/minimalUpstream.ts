// The bench's upstream: answers every request at once with a small JSON body, so the measurement is the proxy's cost.
// As the gateway's attribute resolver it says every order belongs to the user whose id it carries
// (GET /api/orders/<userId>), so the resolver path is allowed for the signed-in bench user.
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? 0);
const body = JSON.stringify({ products: [{ id: "prd_1", name: "Organic shallots, 10 kg", priceCents: 2400 }] });
const ATTRIBUTES = "/.well-known/gerbang/attributes/Order/";
const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    const url = req.url ?? "/";
    const answer = url.startsWith(ATTRIBUTES) ? JSON.stringify({ id: decodeURIComponent(url.slice(ATTRIBUTES.length)), buyerId: decodeURIComponent(url.slice(ATTRIBUTES.length)), status: "pending" }) : body;
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(answer) });
    res.end(answer);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => process.stdout.write("ready\n"));
