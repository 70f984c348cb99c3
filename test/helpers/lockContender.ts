// A process that tries to take the embedded database lock once (used by test/unit/embeddedLock.test.ts):
// prints "held <from> <to>" after holding it for 300 ms, or "busy".
import { acquireEmbeddedLock, EmbeddedDatabaseBusy } from "../../src/db/embeddedLock.ts";

const dir = process.argv[2] ?? "";
try {
  const release = await acquireEmbeddedLock(dir, { command: "serve" });
  const from = Date.now();
  await new Promise((r) => setTimeout(r, 300));
  const to = Date.now();
  release();
  process.stdout.write(`held ${from} ${to}\n`);
} catch (error) {
  process.stdout.write(error instanceof EmbeddedDatabaseBusy ? "busy\n" : `error ${(error as Error).message}\n`);
}
