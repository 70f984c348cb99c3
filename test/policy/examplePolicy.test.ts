// The shipped policy versions are valid and their own tests (tests/*_test.yaml) pass.
import t from "tap";
import { fileURLToPath } from "node:url";
import { listPolicyVersions, loadPolicySet } from "../../src/policy/loadPolicySet.ts";
import { runPolicyTests } from "../../src/policy/runPolicyTests.ts";

const root = fileURLToPath(new URL("../../policies", import.meta.url));
const versions = listPolicyVersions(root);
t.ok(versions.length > 0, "at least one version ships");

for (const { version, dir } of versions) {
  t.test(`policy ${version}`, async (t) => {
    const policy = loadPolicySet(dir);
    t.equal(policy.version, version);
    const results = runPolicyTests(policy);
    t.ok(results.length >= 10, "the version carries its own tests");
    for (const r of results) t.ok(r.passed, `${r.file}: ${r.name} (expected ${r.expected}, got ${r.actual} ${r.reason})`);
  });
}
