import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { holderAlive, type LockHolder } from "../db/embeddedLock.ts";
import { writePrivateFile } from "../runtime/privateFile.ts";

/** What a running gateway publishes for the CLI in `<dataDir>/admin.json` (mode 0600). */
export interface AdminEndpoint {
  url: string;
  token: string;
  /** Which database the gateway serves: the CLI delegates only commands meant for that same database. */
  database: string;
  holder: LockHolder;
}

export const adminEndpointFile = (dataDir: string): string => join(dataDir, "admin.json");

/** Names a database without revealing its URL (which may carry a password). */
export function databaseIdentity(url: string | undefined, embeddedDir: string): string {
  const name = url !== undefined && url !== "" ? `postgres:${url}` : `embedded:${embeddedDir}`;
  return createHash("sha256").update(name).digest("base64url");
}

export function writeAdminEndpoint(dataDir: string, endpoint: AdminEndpoint): () => void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = adminEndpointFile(dataDir);
  writePrivateFile(file, JSON.stringify(endpoint));
  return () => {
    try {
      if (readAdminEndpointUnchecked(file)?.token === endpoint.token) unlinkSync(file);
    } catch {
      // gone already
    }
  };
}

function readAdminEndpointUnchecked(file: string): AdminEndpoint | null {
  try {
    return parseEndpoint(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

function parseEndpoint(text: string): AdminEndpoint | null {
  try {
    const parsed = JSON.parse(text) as Partial<AdminEndpoint>;
    if (typeof parsed.url !== "string" || typeof parsed.token !== "string" || typeof parsed.database !== "string" || typeof parsed.holder?.pid !== "number" || typeof parsed.holder.hostname !== "string") return null;
    return parsed as AdminEndpoint;
  } catch {
    return null;
  }
}

export type EndpointLookup = { kind: "none" } | { kind: "found"; endpoint: AdminEndpoint } | { kind: "untrusted"; reason: string };

/**
 * The running gateway's endpoint, if a live one published it. The file is trusted only when this
 * user owns it and nobody else can read or write it: the CLI sends passwords to the URL it names.
 */
export function findAdminEndpoint(dataDir: string): EndpointLookup {
  const file = adminEndpointFile(dataDir);
  let fd: number;
  try {
    // Opened once, without following a link, and checked on that handle: nothing can be swapped in between.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? { kind: "none" } : { kind: "untrusted", reason: `${file} cannot be opened safely (${code ?? "error"}${code === "ELOOP" ? ": it is a symbolic link" : ""})` };
  }
  try {
    const { mode, uid } = fstatSync(fd);
    if (typeof process.getuid === "function" && uid !== process.getuid()) return { kind: "untrusted", reason: `${file} belongs to another user` };
    if ((mode & 0o077) !== 0) return { kind: "untrusted", reason: `${file} is readable or writable by others (mode ${(mode & 0o777).toString(8)}); it must be 600` };
    const endpoint = parseEndpoint(readFileSync(fd, "utf8"));
    if (endpoint === null) return { kind: "none" };
    return holderAlive(endpoint.holder) ? { kind: "found", endpoint } : { kind: "none" };
  } finally {
    closeSync(fd);
  }
}
