import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * Calls `fn` once when the request is over: its response closed, or its connection closed first.
 * Both are needed: Node 20 never closes a response still queued behind another (pipelining) on a
 * connection that dies.
 */
export function whenRequestEnds(request: FastifyRequest, reply: FastifyReply, fn: () => void): void {
  const socket = request.raw.socket;
  let called = false;
  const once = (): void => {
    if (called) return;
    called = true;
    socket.removeListener("close", once);
    fn();
  };
  reply.raw.once("close", once);
  socket.once("close", once);
}
