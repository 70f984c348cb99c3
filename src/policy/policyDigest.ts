import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/**
 * SHA-256 over every file of a version folder (paths and bytes, sorted): tells an edited version from
 * an unchanged one. Symbolic links are followed, as the loader follows them (Kubernetes mounts
 * ConfigMaps that way); anything that is not a regular file or folder (a FIFO would block the loader)
 * is an error.
 */
export function policyDigest(dir: string): string {
  const hash = createHash("sha256");
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile()) {
        const content = readFileSync(path);
        hash.update(`${relative(dir, path)}\0${content.length}\0`).update(content);
      } else throw new Error(`${relative(dir, path)}: not a regular file`);
    }
  };
  walk(dir);
  return hash.digest("hex");
}
