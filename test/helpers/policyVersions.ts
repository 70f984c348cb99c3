import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes `<root>/<version>`: a copy of `<root>/<from>` with anonymous product reads taken away, and
 * (with `updateTest`) its policy test saying so — otherwise the version fails its own tests.
 */
export function writeStricterVersion(root: string, from: string, version: string, options: { updateTest: boolean }): string {
  const dir = join(root, version);
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(root, from), dir, { recursive: true });
  const manifest = readFileSync(join(dir, "manifest.yaml"), "utf8").replace(`version: "${from}"`, `version: "${version}"`).replace(/created: ".*"/, `created: "${version}T00:00:00Z"`);
  writeFileSync(join(dir, "manifest.yaml"), manifest);
  writeFileSync(join(dir, "roles", "anonymous.yaml"), "role: anonymous\ndescription: Requests without credentials.\nrules: []\n");
  if (options.updateTest) {
    const tests = join(dir, "tests", "marketplace_test.yaml");
    writeFileSync(tests, readFileSync(tests, "utf8").replace("  - name: anonymous reads products\n    principal: { roles: [anonymous] }\n    action: read\n    subject: Product\n    expect: allow", "  - name: anonymous no longer reads products\n    principal: { roles: [anonymous] }\n    action: read\n    subject: Product\n    expect: deny"));
  }
  return dir;
}
