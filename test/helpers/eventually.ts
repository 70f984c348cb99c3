/**
 * Polls `check` until it returns true or `withinMs` passes; then resolves with its last answer.
 * For effects that land asynchronously (the audit writer's batches): a fixed sleep is either slow
 * or flaky on a loaded machine, and a test must wait for the effect, not for a guess of its delay.
 */
export async function eventually(check: () => Promise<boolean> | boolean, withinMs = 15_000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
