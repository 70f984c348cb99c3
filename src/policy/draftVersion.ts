import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { parseDocument } from "yaml";
import Value from "#typebox/value";
import { listPolicyVersions, loadPolicySet, type LoadPolicyOptions } from "./loadPolicySet.ts";
import { isFolderName, surveyPolicyFolder } from "./policyFolder.ts";
import { runPolicyTests } from "./runPolicyTests.ts";
import { formatProblem, PolicyError, type PolicySet } from "./policySet.ts";
import { ManifestSchema } from "./schema.ts";

/** A mistake in authoring (bad name, existing folder, failing draft): said in one message, nothing changed. */
export class DraftError extends Error {
  override readonly name = "DraftError";
}

const draftName = (version: string): string => `_${version}`;
const folderName = (name: string): string => {
  if (!isFolderName(name)) throw new DraftError(`${name} is not a version or draft name`);
  return name;
};

/**
 * `policy new`: copies a version (default: the newest published) into the draft folder `_<version>`
 * with `version` and `created` set, comments kept. The copy is written under a temporary name and
 * renamed, so a half-copied draft never exists.
 */
export function newDraft(root: string, version: string, from: string | undefined, now: Date = new Date()): { draft: string; dir: string; from: string } {
  if (!Value.Check(ManifestSchema.properties.version, version)) throw new DraftError(`${version} is not a version name: a letter or digit, then up to 63 letters, digits, . _ or -`);
  for (const taken of [version, draftName(version)]) {
    if (existsSync(join(root, taken))) throw new DraftError(`${join(root, taken)} exists already: choose another version name`);
  }
  const source = from === undefined ? listPolicyVersions(root)[0]?.version : folderName(from);
  if (source === undefined) throw new DraftError(`no version in ${root} to copy: give --from <version>`);
  const sourceDir = join(root, source);
  if (!existsSync(join(sourceDir, "manifest.yaml"))) throw new DraftError(`no version ${source} in ${root}`);
  const temp = join(root, `.${draftName(version)}.${randomBytes(4).toString("hex")}`);
  try {
    cpSync(sourceDir, temp, { recursive: true, errorOnExist: true, force: false });
    const manifestFile = join(temp, "manifest.yaml");
    const manifest = parseDocument(readFileSync(manifestFile, "utf8"));
    manifest.set("version", version);
    // Seconds precision, like the shipped manifests; two drafts made in one second still differ by name.
    manifest.set("created", now.toISOString().replace(/\.\d{3}Z$/, "Z"));
    writeFileSync(manifestFile, manifest.toString());
    renameSync(temp, join(root, draftName(version)));
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw error;
  }
  return { draft: draftName(version), dir: join(root, draftName(version)), from: source };
}

/**
 * `policy publish`: a draft that validates, passes its tests and has a `created` of its own is renamed
 * into place (one rename: the version appears whole or not at all). Publishing does not activate.
 */
export function publishDraft(root: string, name: string, options: LoadPolicyOptions = {}): { version: string; dir: string; policy: PolicySet } {
  const draft = folderName(name.startsWith("_") ? name : draftName(name));
  const version = draft.slice(1);
  const dir = join(root, draft);
  if (!existsSync(dir)) throw new DraftError(`no draft ${draft} in ${root}: create one with gerbang policy new ${version}`);
  const target = join(root, version);
  if (existsSync(target)) throw new DraftError(`${target} exists already: a published version is never replaced; choose another name`);
  // What is tested is what is published: a copy, out of the editor's reach, is checked and then renamed into place.
  const staging = join(root, `.publish-${randomBytes(4).toString("hex")}`);
  const copy = join(staging, version);
  try {
    cpSync(dir, copy, { recursive: true, errorOnExist: true, force: false });
    let policy: PolicySet;
    try {
      policy = loadPolicySet(copy, options);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      throw new DraftError(`${draft} is not published:\n${error.problems.map((p) => `  ${formatProblem(p).replace(`${version}/`, `${draft}/`)}`).join("\n")}`);
    }
    const failed = runPolicyTests(policy).filter((r) => !r.passed);
    if (failed.length > 0) throw new DraftError(`${draft} is not published: ${failed.length} policy test(s) fail:\n${failed.map((r) => `  ${r.file.replace(`${version}/`, `${draft}/`)}: ${r.name}: expected ${r.expected}, got ${r.actual}`).join("\n")}`);
    const twin = surveyPolicyFolder(root).folders.find((f) => !f.draft && f.created === policy.manifest.created);
    if (twin !== undefined) throw new DraftError(`${draft} is not published: its created (${policy.manifest.created}) is also ${twin.name}'s; versions are ordered by created`);
    // The target is claimed first (mkdir fails if it exists): of two publishers, one wins and the other is told.
    try {
      mkdirSync(target);
    } catch {
      throw new DraftError(`${target} exists already: a published version is never replaced; choose another name`);
    }
    renameSync(copy, target);
    rmSync(dir, { recursive: true, force: true });
    return { version, dir: target, policy: { ...policy, dir: target } };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
