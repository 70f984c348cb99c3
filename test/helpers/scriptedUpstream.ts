import { createServer, type Server, type Socket } from "node:net";
import { onRequestHeads } from "./requestHeads.ts";

/** One scripted answer: the exact bytes, and whether the upstream closes the connection after them. */
export interface ScriptedAnswer {
  bytes: string;
  close: boolean;
}

export interface ScriptedUpstream {
  url: string;
  /** Answers the next request that carries `x-case: <id>` with these bytes (latin1). */
  script(id: string, answer: ScriptedAnswer): void;
  /** Heads of the requests received since the start, in order. */
  readonly heads: readonly string[];
  close(): Promise<void>;
}

/**
 * A raw TCP upstream that answers each request with bytes the test wrote, framing mistakes and all:
 * what an ordinary, a broken or a hostile service might send back. Requests without a scripted case
 * get a small 200.
 */
export async function startScriptedUpstream(): Promise<ScriptedUpstream> {
  const sockets = new Set<Socket>();
  const answers = new Map<string, ScriptedAnswer>();
  const heads: string[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    onRequestHeads(socket, (head) => {
      heads.push(head);
      const id = /\r\nx-case:\s*([^\r]+)/i.exec(head)?.[1]?.trim() ?? "";
      const answer = answers.get(id) ?? { bytes: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", close: false };
      answers.delete(id);
      socket.write(answer.bytes, "latin1");
      if (!answer.close) return true;
      socket.end();
      return false;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    script: (id, answer) => answers.set(id, answer),
    heads,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
