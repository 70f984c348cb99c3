import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** Linux: the holder's start time in clock ticks since boot (/proc/<pid>/stat field 22), so a reused pid is not mistaken for it. */
  startTicks: string | null;
  since: string;
  command: string;
}

export class EmbeddedDatabaseBusy extends Error {
  readonly holder: LockHolder;

  constructor(dir: string, holder: LockHolder) {
    super(`the embedded database ${dir} is in use by process ${holder.pid} (${holder.command}, since ${holder.since}); PGlite allows one process at a time`);
    this.holder = holder;
    this.name = "EmbeddedDatabaseBusy";
  }
}

function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether the process a lock file names still runs (and is the same process, where the OS lets us tell). */
export function holderAlive(holder: LockHolder): boolean {
  if (holder.hostname !== hostname()) return true; // another machine's process: never presumed dead
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  const ticks = startTicks(holder.pid);
  return holder.startTicks === null || ticks === null || ticks === holder.startTicks;
}

export function readLockHolder(file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return null;
    return {
      pid: parsed.pid,
      hostname: typeof parsed.hostname === "string" ? parsed.hostname : hostname(),
      startTicks: typeof parsed.startTicks === "string" ? parsed.startTicks : null,
      since: typeof parsed.since === "string" ? parsed.since : "?",
      command: typeof parsed.command === "string" ? parsed.command : "?",
    };
  } catch {
    return null;
  }
}

/** This process, as a lock file or the admin endpoint file names it. */
export function selfHolder(command: string): LockHolder {
  return { pid: process.pid, hostname: hostname(), startTicks: startTicks(process.pid), since: new Date().toISOString(), command: `gerbang ${command}`.slice(0, 200) };
}

export function lockFileOf(embeddedDir: string): string {
  return `${embeddedDir.replace(/[\\/]+$/, "")}.lock`;
}

/**
 * Takes the embedded database's exclusive lock (`<dir>.lock`, holding this process's pid) or throws
 * EmbeddedDatabaseBusy. A lock whose holder is gone, or that is unreadable
 * (a crash between create and write), is stale and taken over. Returns the release function.
 */
export function acquireEmbeddedLock(embeddedDir: string, command = process.argv.slice(2).join(" ") || "node"): () => void {
  const file = lockFileOf(embeddedDir);
  const me = selfHolder(command);
  for (let attempt = 0; attempt < 3; attempt++) {
    // Written whole under a private name, then linked into place: link(2) fails if the lock exists,
    // and nobody ever reads a half-written lock (which would look stale and be taken over).
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(me), { mode: 0o600 });
    try {
      linkSync(temp, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = readLockHolder(file);
      if (holder !== null && holderAlive(holder)) throw new EmbeddedDatabaseBusy(embeddedDir, holder);
      // Stale (holder gone, or the file unreadable): remove it and race again; the first link wins.
      try {
        unlinkSync(file);
      } catch {
        // another process removed it first
      }
      continue;
    } finally {
      unlinkSync(temp);
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      process.off("exit", release);
      // Only our own lock: after a takeover by a later process the file is theirs.
      if (readLockHolder(file)?.pid === process.pid) {
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      }
    };
    process.on("exit", release);
    return release;
  }
  const holder = readLockHolder(file);
  if (holder !== null) throw new EmbeddedDatabaseBusy(embeddedDir, holder);
  throw new Error(`could not take the lock ${file}`);
}
