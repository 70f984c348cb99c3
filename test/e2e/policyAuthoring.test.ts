// The security team's authoring loop from the CLI, on a copy of the shipped policy folder:
// `policy new` makes a draft, `validate` and `test` accept it (exit 1 on any problem or failing case,
// --json for CI), `publish` renames it into place only when it is valid and passes, and a folder of
// versions is refused when any folder in it cannot be read or two versions share a `created`.
import t from "tap";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { runGerbang } from "../helpers/processes.ts";

const SHIPPED = new URL("../../policies/", import.meta.url).pathname;

function workspace(t: { teardown(fn: () => void): void }): { root: string; cli: (...args: string[]) => ReturnType<typeof runGerbang> } {
  const cwd = mkdtempSync(join(tmpdir(), "gerbang-authoring-"));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const root = join(cwd, "policies");
  // The versions this file's counts are written against (2026-12-01 newest); later shipped ones are left out.
  for (const version of ["2026-11-26", "2026-11-27", "2026-12-01"]) cpSync(join(SHIPPED, version), join(root, version), { recursive: true });
  writeFileSync(join(cwd, "gerbang.yaml"), `policy:\n  dir: ${root}\ndemo:\n  upstream: true\n`);
  return { root, cli: (...args) => runGerbang([...args, "--config", join(cwd, "gerbang.yaml")], {}, { cwd }) };
}

t.test("new → edit → test → publish: a draft is copied with its own version and created, tested, then renamed into place", async (t) => {
  const { root, cli } = workspace(t);
  const made = await cli("policy", "new", "2026-12-05");
  t.equal(made.code, 0, made.stderr);
  t.match(made.stdout, /created draft _2026-12-05 from 2026-12-01/);
  const manifest = parse(readFileSync(join(root, "_2026-12-05", "manifest.yaml"), "utf8")) as { version: string; created: string };
  t.equal(manifest.version, "2026-12-05");
  t.not(manifest.created, "2026-12-01T00:00:00Z", "a created of its own");
  t.match(readFileSync(join(root, "_2026-12-05", "manifest.yaml"), "utf8"), /# A published version is immutable/, "comments kept");

  t.match((await cli("policy", "validate", "_2026-12-05")).stdout, /_2026-12-05 \(draft\): valid, 152\/152 policy tests pass/);
  // The team takes anonymous product reads away but forgets the endpoint table: the draft's own tests catch it.
  writeFileSync(join(root, "_2026-12-05", "roles", "anonymous.yaml"), "role: anonymous\nrules: []\n");
  const failing = await cli("policy", "test", "_2026-12-05");
  t.equal(failing.code, 1);
  t.match(failing.stdout, /FAIL  _2026-12-05\/tests\/endpoints_test\.yaml: list products as anonymous: expected 200 rule anonymous\.products\.read, got 401 NO_MATCHING_RULE \(endpoint products\.list\)/);
  t.match(failing.stdout, /ok    _2026-12-05\/tests\/endpoints_test\.yaml: create a shop as user/);
  t.match(failing.stdout, /_2026-12-05 \(draft\): 148 passed, 4 failed; endpoint × role cells covered by request tests: 100\/100/);
  const refused = await cli("policy", "publish", "_2026-12-05");
  t.equal(refused.code, 1);
  t.match(refused.stderr, /_2026-12-05 is not published: 4 policy test\(s\) fail/);
  t.ok(existsSync(join(root, "_2026-12-05")) && !existsSync(join(root, "2026-12-05")), "nothing renamed");

  const tests = join(root, "_2026-12-05", "tests");
  writeFileSync(join(tests, "endpoints_test.yaml"), readFileSync(join(tests, "endpoints_test.yaml"), "utf8").replaceAll("anonymous: { status: 200, rule: anonymous.products.read }", "anonymous: 401").replace("expect: { anonymous: 200 }", "expect: { anonymous: 401 }").replace("expect: { anonymous: 200, user: 200,", "expect: { anonymous: 401, user: 200,"));
  writeFileSync(join(tests, "marketplace_test.yaml"), readFileSync(join(tests, "marketplace_test.yaml"), "utf8").replace("action: read\n    subject: Product\n    expect: allow", "action: read\n    subject: Product\n    expect: deny"));
  const passing = await cli("policy", "test", "_2026-12-05", "--json");
  t.equal(passing.code, 0, passing.stdout);
  const report = JSON.parse(passing.stdout) as { ok: boolean; versions: Array<{ version: string; draft: boolean; coverage: { covered: number; cells: number } }> };
  t.same([report.ok, report.versions[0]?.version, report.versions[0]?.draft, report.versions[0]?.coverage.covered], [true, "2026-12-05", true, 100]);

  const published = await cli("policy", "publish", "_2026-12-05");
  t.equal(published.code, 0, published.stderr);
  t.match(published.stdout, /published 2026-12-05 .*not active yet: gerbang policy activate 2026-12-05/);
  t.ok(existsSync(join(root, "2026-12-05", "manifest.yaml")) && !existsSync(join(root, "_2026-12-05")), "renamed into place");
  t.match((await cli("policy", "validate")).stdout, /2026-12-05: valid/);
});

t.test("new refuses a name in use, a bad name and an unknown source; publish refuses a missing draft or a taken name", async (t) => {
  const { root, cli } = workspace(t);
  const taken = await cli("policy", "new", "2026-12-01");
  t.equal(taken.code, 1);
  t.match(taken.stderr, /2026-12-01 exists already/);
  t.match((await cli("policy", "new", "-x")).stderr, /error: unknown option|is not a version name/);
  t.match((await cli("policy", "new", "a/b")).stderr, /a\/b is not a version name/);
  t.match((await cli("policy", "new", "v9", "--from", "1999-01-01")).stderr, /no version 1999-01-01/);
  t.match((await cli("policy", "publish", "_nothing")).stderr, /no draft _nothing/);
  t.match((await cli("policy", "new", "v8", "--from", "../policies/2026-12-01")).stderr, /\.\.\/policies\/2026-12-01 is not a version or draft name/, "names, never paths");
  t.match((await cli("policy", "publish", "_a/../../x")).stderr, /is not a version or draft name/);
  t.equal((await cli("policy", "new", "v9", "--from", "2026-11-26")).code, 0);
  t.match((await cli("policy", "new", "v9")).stderr, /_v9 exists already/);
  mkdirSync(join(root, "v9"));
  t.match((await cli("policy", "publish", "v9")).stderr, /v9 exists already: a published version is never replaced/);
  t.same(
    (await import("node:fs")).readdirSync(root).filter((n) => n.startsWith(".")),
    [],
    "no temporary copy left behind",
  );
});

t.test("a draft's manifest must name the draft's version; a copied version with the same created is refused", async (t) => {
  const { root, cli } = workspace(t);
  cpSync(join(root, "2026-12-01"), join(root, "_copy"), { recursive: true });
  const wrong = await cli("policy", "validate", "_copy");
  t.equal(wrong.code, 1);
  t.match(wrong.stdout, /_copy\/manifest\.yaml:\d+ \/version: must equal the folder name copy \(the draft _copy\)/);

  // The shipped mistake: a copied folder that keeps its created was a silent tie.
  cpSync(join(root, "2026-12-01"), join(root, "2026-12-02"), { recursive: true });
  const manifest = join(root, "2026-12-02", "manifest.yaml");
  writeFileSync(manifest, readFileSync(manifest, "utf8").replace('version: "2026-12-01"', 'version: "2026-12-02"'));
  rmSync(join(root, "_copy"), { recursive: true });
  const tie = await cli("policy", "validate");
  t.equal(tie.code, 1);
  t.match(tie.stdout, /2026-12-02\/manifest\.yaml \/created: 2026-12-01T00:00:00Z is also the created time of 2026-12-01/);
  const json = JSON.parse((await cli("policy", "validate", "--json")).stdout) as { ok: boolean; problems: Array<{ file: string; path: string }> };
  t.same([json.ok, json.problems[0]?.file, json.problems[0]?.path], [false, "2026-12-02/manifest.yaml", "/created"]);
  const serve = await runGerbang(["serve", "--config", join(root, "..", "gerbang.yaml")], { PORT: "0", DATABASE_URL: "", REDIS_URL: "" }, { cwd: join(root, "..") });
  t.equal(serve.code, 1, "a gateway does not pick one of two tied versions");
  t.match(serve.stderr, /same created as 2026-12-0[12]: which version is newest is a tie/);
});

t.test("a folder of versions fails on any folder it cannot read, and says which", async (t) => {
  const { root, cli } = workspace(t);
  mkdirSync(join(root, "2026-12-03"));
  writeFileSync(join(root, "2026-12-03", "manifest.yaml"), "version: [\n");
  mkdirSync(join(root, "notes"));
  const run = await cli("policy", "validate");
  t.equal(run.code, 1);
  t.match(run.stdout, /notes\/manifest\.yaml: file not found: every folder here must be a version/);
  t.match(run.stdout, /2026-12-03: 2 problems\n {2}2026-12-03\/manifest\.yaml:2: not valid YAML/);
  t.equal(run.stdout.match(/not valid YAML/g)?.length, 1, "said once");
  t.match(run.stdout, /2026-12-01: valid/, "the others are still validated");
  const tested = await cli("policy", "test");
  t.equal(tested.code, 1);
  t.match(tested.stdout, /2026-12-03: not valid, no tests run/);
});
