import type { Socket } from "node:net";

/**
 * Calls `onHead` with the head of each request a raw upstream receives on `socket`, after its body.
 * Bodies here are small and carry Content-Length (the gateway buffers them). `onHead` returns false
 * to stop reading (the upstream closed the connection).
 */
export function onRequestHeads(socket: Socket, onHead: (head: string) => boolean | void): void {
  socket.on("error", () => undefined);
  let buffered = "";
  socket.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("latin1");
    for (;;) {
      const end = buffered.indexOf("\r\n\r\n");
      if (end === -1 || socket.destroyed) return;
      const head = buffered.slice(0, end);
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      buffered = buffered.slice(end + 4 + length);
      if (onHead(head) === false) return;
    }
  });
}
