import type { IncomingHttpHeaders } from "node:http";

/** An Upgrade header asking for the WebSocket protocol (RFC 6455 §4.1: case-insensitive). */
export function isWebsocketUpgrade(upgrade: string | undefined): boolean {
  return upgrade !== undefined && upgrade.trim().toLowerCase() === "websocket";
}

/** The subprotocols a client offers in Sec-WebSocket-Protocol, in its order. */
export function offeredProtocols(header: string | undefined): string[] {
  return header === undefined ? [] : header.split(",").map((p) => p.trim());
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Why a WebSocket handshake is refused before the upstream hears of it, or null. RFC 6455 §4.2.1: a
 * 16-byte base64 Sec-WebSocket-Key, version 13, subprotocols a list of distinct tokens; and no body (a
 * handshake carrying one would hold body budget for the connection's life).
 */
export function handshakeRefusal(headers: IncomingHttpHeaders): "INVALID_WEBSOCKET_HANDSHAKE" | null {
  const key = headers["sec-websocket-key"];
  if (typeof key !== "string" || !/^[+/0-9A-Za-z]{21}[AQgw]==$/.test(key.trim()) || headers["sec-websocket-version"] !== "13") return "INVALID_WEBSOCKET_HANDSHAKE";
  if (headers["transfer-encoding"] !== undefined || (headers["content-length"] !== undefined && headers["content-length"] !== "0")) return "INVALID_WEBSOCKET_HANDSHAKE";
  const protocols = offeredProtocols(headers["sec-websocket-protocol"]);
  return protocols.every((p) => TOKEN.test(p)) && new Set(protocols).size === protocols.length ? null : "INVALID_WEBSOCKET_HANDSHAKE";
}
