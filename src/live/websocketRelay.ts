import { WebSocket, type RawData } from "ws";
import type { IncomingMessage } from "node:http";
import type { OutgoingHttpHeaders } from "node:http";

/** Close codes a peer may put in a close frame (RFC 6455 §7.4; 1005, 1006 and 1015 are never sent). */
export function sendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** The close code ws sends a peer for its protocol errors (ws/lib/receiver.js), or null for other errors. */
function protocolCloseCode(code: string | undefined): number | null {
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") return 1009;
  if (code === "WS_ERR_INVALID_UTF8") return 1007;
  return code?.startsWith("WS_ERR_") === true ? 1002 : null;
}

/** A close frame's reason is at most 123 bytes. */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= 123) return text;
  // Cut between code points, never inside one (a lone surrogate is not UTF-8).
  let reason = "";
  for (const point of text) {
    if (Buffer.byteLength(reason + point) > 123) break;
    reason += point;
  }
  return reason;
}

/** The handshake headers `ws` sets itself for the connection to the upstream. */
const OWN_HEADERS = /^sec-websocket-/i;

export interface UpstreamHandshake {
  url: string;
  headers: OutgoingHttpHeaders;
  /** The subprotocols the client offered, offered on to the upstream. */
  protocols: string[];
  maxMessageBytes: number;
  timeoutMs: number;
}

/**
 * The gateway's connection to the upstream, opened before the client's upgrade is accepted: an upstream
 * that refuses (an HTTP answer instead of 101) or cannot be reached is answered over HTTP to the client.
 * The socket is returned at once, so a handshake ended meanwhile can abort it (terminate) while it connects.
 */
export function connectUpstream(handshake: UpstreamHandshake): { socket: WebSocket; opened: Promise<{ refused: IncomingMessage } | null> } {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(handshake.headers)) {
    if (value === undefined || OWN_HEADERS.test(name)) continue;
    headers[name] = typeof value === "number" ? String(value) : value;
  }
  const socket = new WebSocket(handshake.url.replace(/^http/, "ws"), handshake.protocols, {
    headers,
    maxPayload: handshake.maxMessageBytes,
    // Compression would let a small frame inflate into a large message (and the gateway never reads them).
    perMessageDeflate: false,
    handshakeTimeout: handshake.timeoutMs,
    followRedirects: false,
  });
  const opened = new Promise<{ refused: IncomingMessage } | null>((resolve, reject) => {
    socket.once("open", () => {
      socket.removeAllListeners("error");
      // An error before the relay listens must not reach the process; the relay sees the close.
      socket.on("error", () => undefined);
      // Held until the relay listens: a greeting sent at once must not be dropped.
      socket.pause();
      resolve(null);
    });
    socket.once("unexpected-response", (_request, response) => {
      socket.removeAllListeners("error");
      // The socket is not used again: ws would otherwise wait for the answer to be consumed.
      socket.on("error", () => undefined);
      resolve({ refused: response });
    });
    socket.once("error", reject);
  });
  return { socket, opened };
}

export interface RelayOptions {
  idleTimeoutMs: number;
  /** Called once, when both sides are closing: who closed first, with what. */
  onClosed: (outcome: { by: "client" | "upstream" | "gateway"; code: number; reason: string }) => void;
}

/** Buffered bytes on one side above which the other side is paused until they drain. */
const HIGH_WATER = 1 << 20;

/**
 * Relays messages both ways as they are (text stays text, binary binary), pausing a side whose peer
 * cannot keep up. A close on one side closes the other with the same code when it may be sent; an idle
 * connection is closed by the gateway. The function returned closes both sides (a revocation).
 */
export function relay(client: WebSocket, upstream: WebSocket, options: RelayOptions): (code: number, reason: string) => void {
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (by: "client" | "upstream" | "gateway", code: number, reason: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    options.onClosed({ by, code, reason });
  };
  const closeBoth = (code: number, reason: string): void => {
    const text = closeReason(reason);
    for (const side of [client, upstream]) {
      if (side.readyState === WebSocket.OPEN) side.close(code, text);
      else if (side.readyState === WebSocket.CONNECTING) side.terminate();
    }
    // A peer that never answers the close frame is cut after a second.
    setTimeout(() => {
      client.terminate();
      upstream.terminate();
    }, 1000).unref();
  };
  const idle = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      finish("gateway", 1001, "idle timeout");
      closeBoth(1001, "idle timeout");
    }, options.idleTimeoutMs);
    timer.unref();
  };
  const pipe = (from: WebSocket, to: WebSocket): void => {
    // ws closes a side that broke the protocol with the matching code, then stops reading it: its close
    // event says 1006 (no close frame came back), so the code is taken from the error.
    let broke: number | null = null;
    from.on("message", (data: RawData, isBinary: boolean) => {
      idle();
      if (to.readyState !== WebSocket.OPEN) return;
      to.send(data, { binary: isBinary }, () => {
        if (from.isPaused && to.bufferedAmount < HIGH_WATER / 2) from.resume();
      });
      if (to.bufferedAmount > HIGH_WATER) from.pause();
    });
    from.on("ping", idle);
    from.on("close", (received: number, reasonBytes: Buffer) => {
      const code = received === 1006 && broke !== null ? broke : received;
      const reason = received === 1006 && broke !== null ? (broke === 1009 ? "message too big" : "protocol error") : reasonBytes.toString();
      finish(from === client ? "client" : "upstream", code, reason);
      if (to.readyState === WebSocket.OPEN) {
        if (sendableCloseCode(code)) to.close(code, closeReason(reason));
        else if (code === 1005) to.close();
        // Gone without a close frame (1006): the other side hears that its peer went away.
        else to.close(1001, from === client ? "client went away" : "upstream went away");
      } else if (to.readyState === WebSocket.CONNECTING) to.terminate();
    });
    from.on("error", (error: Error & { code?: string }) => {
      broke = protocolCloseCode(error.code);
    });
  };
  pipe(client, upstream);
  pipe(upstream, client);
  upstream.resume();
  idle();
  // Closed while the client's upgrade was being completed: the close event has been and gone.
  if (upstream.readyState !== WebSocket.OPEN) {
    finish("upstream", 1001, "upstream went away");
    closeBoth(1001, "upstream went away");
  }
  return (code, reason) => {
    finish("gateway", code, reason);
    closeBoth(code, reason);
  };
}
