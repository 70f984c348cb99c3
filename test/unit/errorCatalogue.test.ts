import t from "tap";
import { readFileSync } from "node:fs";
import { ERRORS, GerbangError, errorBody } from "../../src/errors/catalogue.ts";

const reference = readFileSync(new URL("../../docs/error-codes.md", import.meta.url), "utf8");

t.test("codes are stable UPPER_SNAKE, statuses are errors, messages are plain", async (t) => {
  for (const [code, { status, message }] of Object.entries(ERRORS)) {
    t.match(code, /^[A-Z][A-Z0-9_]+$/, code);
    t.ok(status >= 400 && status <= 599, `${code} has an error status`);
    t.ok(message.length > 0 && !/\{|\$|undefined/.test(message), `${code} message`);
  }
});

t.test("every code is documented in docs/error-codes.md", async (t) => {
  for (const code of Object.keys(ERRORS)) t.ok(reference.includes(`| \`${code}\` |`), `docs/error-codes.md lists ${code}`);
});

t.test("the body shape", async (t) => {
  t.same(errorBody(new GerbangError("FORBIDDEN", { reason: "NO_MATCHING_RULE" }), "r1"), {
    error: { code: "FORBIDDEN", message: ERRORS.FORBIDDEN.message, requestId: "r1", reason: "NO_MATCHING_RULE" },
  });
  t.same(errorBody(new GerbangError("NOT_READY"), "r2"), { error: { code: "NOT_READY", message: ERRORS.NOT_READY.message, requestId: "r2" } });
});
