import { eventually } from "./eventually.ts";

/**
 * Resolves true once the gateway's log has been written up to now: its lines are buffered and
 * flushed every `flushMs` (logFlushMs, 100 by default), so a log unchanged for three intervals has
 * nothing left in the buffer. A check that a log lacks something must run after this.
 */
export async function logCaughtUp(output: () => string, flushMs = 100): Promise<boolean> {
  let length = output().length;
  let since = Date.now();
  return eventually(() => {
    const now = output().length;
    if (now !== length) [length, since] = [now, Date.now()];
    return Date.now() - since >= 3 * flushMs;
  }, 15_000, flushMs / 2);
}
