import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";

/** What the upstream saw of one WebSocket handshake the gateway relayed. */
export interface UpstreamHandshake {
  url: string;
  headers: IncomingMessage["headers"];
}

export interface WebsocketUpstream {
  url: string;
  handshakes: UpstreamHandshake[];
  /** Close frames the upstream received (or 1006 for a connection gone without one), in order. */
  closes: Array<{ code: number; reason: string }>;
  /** Event streams (plain GETs) the upstream is serving and how each ended. */
  streams: Array<{ url: string; ended: Promise<void> }>;
  close(): Promise<void>;
}

/**
 * A real upstream behind the gateway, speaking WebSocket with `ws` on any path: it greets each
 * connection with what it was told (identity headers, subprotocol), echoes messages as they came
 * (text or binary), and obeys a few commands: `close:<code>:<reason>` closes with that code,
 * `big:<bytes>` sends a message that large. A handshake with `refuse` in its query is answered 403.
 * With `slow` in its query the 101 comes a second late. A plain GET is a server-sent event stream that stays open.
 */
export async function startWebsocketUpstream(): Promise<WebsocketUpstream> {
  const handshakes: UpstreamHandshake[] = [];
  const closes: Array<{ code: number; reason: string }> = [];
  const streams: Array<{ url: string; ended: Promise<void> }> = [];
  const server: Server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
    res.write("data: hello\n\n");
    streams.push({ url: req.url ?? "", ended: new Promise((resolve) => res.once("close", () => resolve())) });
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => [...offered][0] ?? false });
  server.on("upgrade", (req, socket, head) => {
    if ((req.url ?? "").includes("refuse")) {
      socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    // `slow` in the query: the 101 comes a second late (a window for a revocation during the handshake).
    const delay = (req.url ?? "").includes("slow") ? 1000 : 0;
    setTimeout(() => accept(req, socket, head), delay);
  });
  const accept = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (socket.destroyed) return;
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      handshakes.push({ url: req.url ?? "", headers: req.headers });
      ws.on("error", () => undefined);
      ws.on("close", (code, reason) => closes.push({ code, reason: reason.toString() }));
      ws.on("message", (data, isBinary) => {
        const text = isBinary ? "" : data.toString();
        const command = /^close:(\d+):(.*)$/.exec(text);
        if (command !== null) return ws.close(Number(command[1]), command[2]);
        const big = /^big:(\d+)$/.exec(text);
        if (big !== null) return ws.send("x".repeat(Number(big[1])));
        ws.send(data, { binary: isBinary });
      });
      const h = req.headers;
      ws.send(JSON.stringify({ user: h["x-gerbang-user"] ?? null, roles: h["x-gerbang-roles"] ?? null, auth: h["x-gerbang-auth"] ?? null, key: h["x-gerbang-key"] ?? null, assertion: typeof h["x-gerbang-assertion"] === "string", authorization: h.authorization ?? null, apiKey: h["x-api-key"] ?? null, cookie: h.cookie ?? null, protocol: ws.protocol, requestId: h["x-request-id"] ?? null }));
    });
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    handshakes,
    closes,
    streams,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
