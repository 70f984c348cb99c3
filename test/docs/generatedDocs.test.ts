// The references in docs/ that are generated from the code must match it: a config field, error
// code or CLI flag added without `npm run docs` fails here.
import t from "tap";
import { readFileSync } from "node:fs";
import { generatedDocs } from "../../scripts/docs/generateDocs.ts";
import { configFields } from "../../scripts/docs/configReference.ts";
import { ERRORS } from "../../src/errors/catalogue.ts";

const root = new URL("../../", import.meta.url);

t.test("every generated reference is up to date (run npm run docs)", async (t) => {
  for (const [file, text] of Object.entries(generatedDocs())) t.equal(readFileSync(new URL(file, root), "utf8"), text, `${file} is stale: run npm run docs`);
});

t.test("every config field and error code carries its own documentation", async (t) => {
  for (const field of configFields()) t.ok(field.description.length > 10, `${field.path} has a description`);
  for (const [code, e] of Object.entries(ERRORS)) t.ok(e.doc.length > 10, `${code} has a meaning`);
});
