import type { Readable } from "node:stream";

/**
 * Drops an upstream answer's body unread. undici's body emits an error (RequestAbortedError) when
 * destroyed before its end: with no listener, that error would take the process down.
 */
export function discardBody(stream: Readable): void {
  stream.on("error", () => undefined);
  stream.destroy();
}
