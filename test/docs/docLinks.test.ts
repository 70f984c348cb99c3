// Every relative link and #anchor in README.md and docs/*.md resolves (the README once pointed at
// #the-example-policy-policies2026-11-27 after the heading had moved on).
import t from "tap";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";

const root = fileURLToPath(new URL("../../", import.meta.url));
const pages = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lower-cased, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (heading?.[1] === undefined) continue;
    const base = heading[1].trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, "").replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

function linksOf(markdown: string): string[] {
  const links: string[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    if (fenced) continue;
    // Inline code is not a link: `a](b)` inside backticks stays text.
    for (const m of line.replace(/`[^`]*`/g, "").matchAll(/\]\(([^)\s]+)\)/g)) if (m[1] !== undefined) links.push(m[1]);
  }
  return links;
}

t.test("the anchor rule matches GitHub's on known headings", async (t) => {
  t.same([...anchorsOf("## The example policy (`policies/2026-12-01`)\n### API key scopes (`scopes.yaml`)\n## Tests\n## Tests")], [
    "the-example-policy-policies2026-12-01",
    "api-key-scopes-scopesyaml",
    "tests",
    "tests-1",
  ]);
  fc.assert(fc.property(fc.string(), (text) => [...anchorsOf(`# ${text}`)].every((a) => !/[\s()`.]/.test(a))));
});

t.test("every relative link and anchor in the docs resolves", async (t) => {
  const anchors = new Map(pages.map((p) => [p, anchorsOf(readFileSync(join(root, p), "utf8"))]));
  for (const page of pages) {
    for (const link of linksOf(readFileSync(join(root, page), "utf8"))) {
      if (/^[a-z]+:/i.test(link)) continue; // http(s), mailto: not checked here
      const [path = "", anchor] = link.split("#");
      const target = path === "" ? page : normalize(relative(root, join(root, dirname(page), path)));
      t.ok(existsSync(join(root, target)), `${page}: ${link} → ${target} exists`);
      if (anchor !== undefined && target.endsWith(".md")) t.ok(anchors.get(target)?.has(anchor), `${page}: ${link} → #${anchor} is a heading of ${target}`);
    }
  }
});

t.test("the README is the front door: it maps every page in docs/", async (t) => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  for (const page of pages.filter((p) => p.startsWith("docs/"))) t.match(readme, `](${page})`, `README links ${page}`);
});
