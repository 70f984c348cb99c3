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
    const requests = join(dir, "tests", "endpoints_test.yaml");
    // Anonymous product reads become 401s in the endpoint table, as the role now says.
    writeFileSync(
      requests,
      readFileSync(requests, "utf8")
        .replace("      anonymous: { status: 200, rule: anonymous.products.read }", "      anonymous: { status: 401, reason: NO_MATCHING_RULE }")
        .replace("    expect: { anonymous: 200 }", "    expect: { anonymous: 401 }")
        .replace("    expect: { anonymous: 200, user: 200,", "    expect: { anonymous: 401, user: 200,"),
    );
    const tests = join(dir, "tests", "marketplace_test.yaml");
    writeFileSync(tests, readFileSync(tests, "utf8").replace("  - name: anonymous reads products\n    principal: { roles: [anonymous] }\n    action: read\n    subject: Product\n    expect: allow", "  - name: anonymous no longer reads products\n    principal: { roles: [anonymous] }\n    action: read\n    subject: Product\n    expect: deny"));
  }
  return dir;
}
