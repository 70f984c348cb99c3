import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

/** SHA-256 over every file of a version folder (paths and bytes, sorted): tells an edited version from an unchanged one. */
export function policyDigest(dir: string): string {
  const hash = createHash("sha256");
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const content = readFileSync(path);
        hash.update(`${relative(dir, path)}\0${content.length}\0`).update(content);
      }
    }
  };
  walk(dir);
  return hash.digest("hex");
}
