import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { isDraftFolder } from "./loadPolicySet.ts";
import type { PolicyProblem } from "./policySet.ts";

/** A folder name under the policy folder (a version or a `_draft`), never a path. */
export const isFolderName = (name: string): boolean => /^_?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name) && !name.includes("..");

export interface VersionFolder {
  /** The folder's name: the version, or `_<version>` for a draft. */
  name: string;
  dir: string;
  draft: boolean;
  /** The manifest's `created`, when the manifest could be read. */
  created: string | null;
}

/**
 * Every folder in a policy folder, drafts included, and what keeps the set from being trusted: a folder
 * whose manifest cannot be read (it would otherwise be skipped without a word) and two published
 * versions with the same `created` (the newest would be a silent tie).
 */
export function surveyPolicyFolder(root: string): { folders: VersionFolder[]; problems: PolicyProblem[] } {
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch (error) {
    return { folders: [], problems: [{ file: root, path: "", reason: `policy folder cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})` }] };
  }
  const folders: VersionFolder[] = [];
  const problems: PolicyProblem[] = [];
  for (const name of names) {
    const dir = join(root, name);
    if (name.startsWith(".") || !isDirectory(dir)) continue;
    const manifest = join(name, "manifest.yaml");
    if (!isFile(join(dir, "manifest.yaml"))) {
      problems.push({ file: manifest, path: "", reason: "file not found: every folder here must be a version (a draft: _<version>)" });
      continue;
    }
    let created: string | null = null;
    try {
      const data = parseYaml(readFileSync(join(dir, "manifest.yaml"), "utf8")) as { created?: unknown } | null;
      created = typeof data?.created === "string" ? data.created : null;
    } catch {
      // Loading the version reports what is wrong with its manifest, with the line.
    }
    folders.push({ name, dir, draft: isDraftFolder(name), created });
  }
  const published = folders.filter((f) => !f.draft && f.created !== null);
  for (const [i, folder] of published.entries()) {
    const twin = published.slice(0, i).find((other) => other.created === folder.created);
    if (twin !== undefined) {
      problems.push({ file: join(folder.name, "manifest.yaml"), path: "/created", reason: `${folder.created ?? ""} is also the created time of ${twin.name}: versions are ordered by created, give each its own` });
    }
  }
  return { folders, problems };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
