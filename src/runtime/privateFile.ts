import { randomBytes } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";

/**
 * Writes `file` (mode 600) whole under a random name created exclusively, then renames it into
 * place: readers never see half a file, and a file or link planted under the name is replaced,
 * never written through.
 */
export function writePrivateFile(file: string, content: string): void {
  const temp = `${file}.${randomBytes(8).toString("hex")}.tmp`;
  writeFileSync(temp, content, { mode: 0o600, flag: "wx" });
  renameSync(temp, file);
}
