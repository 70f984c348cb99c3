import { ERRORS } from "../../src/errors/catalogue.ts";

export function errorReferenceTable(): string {
  const rows = Object.entries(ERRORS).map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.doc.replace(/\|/g, "\\|")} |`);
  return ["| code | status | meaning |", "|---|---|---|", ...rows].join("\n");
}
