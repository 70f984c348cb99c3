import { createServer, type Server, type Socket } from "node:net";
import { onRequestHeads } from "./requestHeads.ts";

/**
 * What the upstream does with the next requests: answer properly (at once, or when the test releases
 * them), never answer, reset the connection, answer bytes that are not HTTP, or send headers and part
 * of the body and reset when the test cuts it.
 */
export type UpstreamMode = "ok" | "held" | "slow" | "reset" | "garbage" | "truncated";

export interface FaultyUpstream {
  url: string;
  port: number;
  mode: UpstreamMode;
  /** Requests (complete heads) received since the start. */
  readonly requests: number;
  /** TCP connections accepted since the start, and open right now. */
  readonly accepted: number;
  readonly open: number;
  /** Answers every request held so far ("held" mode). */
  releaseHeld(): void;
  /** Resets the connections of "truncated" answers, in the middle of their bodies. */
  cutTruncated(): void;
  /** Stops listening and drops every connection (connection refused from now on). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** A raw TCP upstream the test switches between behaviours; it counts what reaches it. */
export async function startFaultyUpstream(): Promise<FaultyUpstream> {
  const sockets = new Set<Socket>();
  let requests = 0;
  let accepted = 0;
  const state = { mode: "ok" as UpstreamMode };
  const held: Array<() => void> = [];
  const truncated = new Set<Socket>();
  const onConnection = (socket: Socket): void => {
    accepted += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    onRequestHeads(socket, (head) => {
      requests += 1;
      respond(socket, head);
    });
  };
  const respond = (socket: Socket, head: string): void => {
    const path = head.split(" ")[1] ?? "";
    const ok = (): void => {
      const body = JSON.stringify({ ok: true, path });
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    };
    switch (state.mode) {
      case "ok":
        ok();
        return;
      case "held":
        held.push(ok);
        return;
      case "slow":
        return;
      case "reset":
        socket.resetAndDestroy();
        return;
      case "garbage":
        socket.end("SSH-2.0-OpenSSH_9.2\r\n\u0000\u0001not http at all\r\n\r\n");
        return;
      case "truncated":
        socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\npartial");
        truncated.add(socket);
        return;
    }
  };
  let server: Server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const down = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get mode() {
      return state.mode;
    },
    set mode(mode: UpstreamMode) {
      state.mode = mode;
    },
    get requests() {
      return requests;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    releaseHeld: () => {
      for (const answer of held.splice(0)) answer();
    },
    cutTruncated: () => {
      for (const socket of truncated) socket.resetAndDestroy();
      truncated.clear();
    },
    down,
    up: async () => {
      // The port was ours a moment ago; retry briefly if the kernel has not let go of it yet.
      for (let attempt = 0; ; attempt++) {
        server = createServer(onConnection);
        try {
          await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(port, "127.0.0.1", resolve);
          });
          return;
        } catch (error) {
          if (attempt >= 20 || (error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
    close: async () => {
      if (server.listening) await down();
    },
  };
}
