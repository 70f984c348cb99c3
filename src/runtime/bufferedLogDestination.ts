import pino from "pino";

export interface BufferedLogDestination {
  stream: pino.DestinationStream;
  /** Writes what is buffered, synchronously, and stops the timer (closing, exiting, crashing). */
  close(): void;
}

/**
 * Log lines to stdout through a buffer written every `flushMs` (or every 8 KB), and on exit: a
 * write(2) per line costs a proxy more CPU than the rest of its logging. A crash still writes what
 * was buffered (the exit handler runs synchronously); only a SIGKILL loses the last `flushMs`.
 */
export function bufferedLogDestination(flushMs: number): BufferedLogDestination {
  const destination = pino.destination({ dest: 1, minLength: flushMs > 0 ? 8 * 1024 : 0, sync: false });
  const flushNow = (): void => {
    try {
      destination.flushSync();
    } catch {
      // Not open yet, or stdout gone: nothing more can be written.
    }
  };
  const timer = flushMs > 0 ? setInterval(() => destination.flush(() => undefined), flushMs) : null;
  timer?.unref();
  process.once("exit", flushNow);
  return {
    stream: destination,
    close: () => {
      if (timer !== null) clearInterval(timer);
      process.removeListener("exit", flushNow);
      flushNow();
    },
  };
}
