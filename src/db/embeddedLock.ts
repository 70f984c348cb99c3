import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** Linux: the holder's start time in clock ticks since boot (/proc/<pid>/stat field 22), so a reused pid is not mistaken for it. */
  startTicks: string | null;
  since: string;
  /** The command without its flags (`gerbang users create`): flags may carry a password. */
  command: string;
}

export class EmbeddedDatabaseBusy extends Error {
  readonly holder: LockHolder;
  readonly lockFile: string;

  constructor(dir: string, lockFile: string, holder: LockHolder) {
    const where = holder.hostname === hostname() ? `process ${holder.pid}` : `process ${holder.pid} on host ${holder.hostname} (if nothing runs there, delete ${lockFile})`;
    super(`the embedded database ${dir} is in use by ${where} (${holder.command}, since ${holder.since}); PGlite allows one process at a time`);
    this.holder = holder;
    this.lockFile = lockFile;
    this.name = "EmbeddedDatabaseBusy";
  }
}

/** Linux /proc/<pid>/stat: the state (field 3) and the start time (field 22), or null where there is no /proc. */
function procStat(pid: number): { state: string; startTicks: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", startTicks: fields[19] ?? "" };
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
  const stat = procStat(holder.pid);
  if (stat === null) return true;
  // A zombie (exited, not yet reaped) holds no database.
  if (stat.state === "Z" || stat.state === "X") return false;
  return holder.startTicks === null || stat.startTicks === holder.startTicks;
}

type LockRead = { kind: "gone" } | { kind: "holder"; holder: LockHolder } | { kind: "unreadable" };

/** "unreadable" only for content that is not a lock (a crash mid-write); a file we may not read is somebody's lock. */
function readLock(file: string): LockRead {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { kind: "gone" };
    return { kind: "holder", holder: { pid: 0, hostname: "?", startTicks: null, since: "?", command: `an unreadable lock (${(error as NodeJS.ErrnoException).code ?? "error"})` } };
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number" || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return { kind: "unreadable" };
    return {
      kind: "holder",
      holder: {
        pid: parsed.pid,
        hostname: typeof parsed.hostname === "string" ? parsed.hostname : hostname(),
        startTicks: typeof parsed.startTicks === "string" ? parsed.startTicks : null,
        since: typeof parsed.since === "string" ? parsed.since : "?",
        command: typeof parsed.command === "string" ? parsed.command : "?",
      },
    };
  } catch {
    return { kind: "unreadable" };
  }
}

export function readLockHolder(file: string): LockHolder | null {
  const read = readLock(file);
  return read.kind === "holder" ? read.holder : null;
}

/** This process, as a lock file or the admin endpoint file names it. */
export function selfHolder(command: string): LockHolder {
  return { pid: process.pid, hostname: hostname(), startTicks: procStat(process.pid)?.startTicks ?? null, since: new Date().toISOString(), command: `gerbang ${command}`.slice(0, 100) };
}

export function lockFileOf(embeddedDir: string): string {
  return `${embeddedDir.replace(/[\\/]+$/, "")}.lock`;
}

/** The command words before the first flag: `users create`, never `--password …`. */
export function commandName(argv: readonly string[] = process.argv.slice(2)): string {
  const words: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith("-") || words.length === 2) break;
    words.push(arg);
  }
  return words.join(" ") || "node";
}

/** Creates `file` holding `content`, or returns false if it exists: written whole under a random name, then linked. */
function createExclusive(file: string, content: string): boolean {
  const temp = `${file}.${randomBytes(8).toString("hex")}.tmp`;
  writeFileSync(temp, content, { mode: 0o600, flag: "wx" });
  try {
    linkSync(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return false;
  } finally {
    unlinkSync(temp);
  }
}

const sameHolder = (a: LockHolder, b: LockHolder): boolean => a.pid === b.pid && a.hostname === b.hostname && a.startTicks === b.startTicks && a.since === b.since;

/**
 * Removes a stale lock, but only the one we judged stale: two processes taking over at once must not
 * both succeed. The takeover itself is exclusive (`<lock>.takeover`, also with a pid), and the lock
 * is read again inside it; nobody else removes a lock file, so what we read there is what we unlink.
 */
function removeStale(file: string, judged: LockRead): void {
  const takeover = `${file}.takeover`;
  if (!createExclusive(takeover, JSON.stringify(selfHolder("lock takeover")))) {
    const other = readLock(takeover);
    // A takeover whose process died is itself stale; otherwise the other process is on it: try again later.
    if (other.kind === "holder" && holderAlive(other.holder)) return;
    try {
      unlinkSync(takeover);
    } catch {
      // removed meanwhile
    }
    return;
  }
  try {
    const now = readLock(file);
    const unchanged = now.kind === judged.kind && (now.kind !== "holder" || (judged.kind === "holder" && sameHolder(now.holder, judged.holder)));
    if (unchanged && now.kind !== "gone") unlinkSync(file);
  } finally {
    unlinkSync(takeover);
  }
}

export interface AcquireOptions {
  /** Shown to a refused opener (`serve`, `users create`); defaults to this process's command words. */
  command?: string;
  /** How long to wait for a holder that is a short CLI command (not `gerbang serve`) to finish. */
  waitForCommandsMs?: number;
}

/**
 * Takes the embedded database's exclusive lock (`<dir>.lock`, holding this process's pid) or throws
 * EmbeddedDatabaseBusy. A lock whose holder is gone, or that holds no lock at all (a crash between
 * create and write), is stale and taken over. Returns the release function.
 */
export function acquireEmbeddedLock(embeddedDir: string, options: AcquireOptions = {}): Promise<() => void> {
  const file = lockFileOf(embeddedDir);
  const me = selfHolder(options.command ?? commandName());
  const deadline = Date.now() + (options.waitForCommandsMs ?? 0);
  const attempt = async (): Promise<() => void> => {
    for (;;) {
      if (createExclusive(file, JSON.stringify(me))) return releaser(file);
      const read = readLock(file);
      if (read.kind === "holder" && holderAlive(read.holder)) {
        // A CLI command holds the database for a moment; a gateway holds it for good.
        if (read.holder.command.startsWith("gerbang serve") || Date.now() >= deadline) throw new EmbeddedDatabaseBusy(embeddedDir, file, read.holder);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (read.kind !== "gone") removeStale(file, read);
      await new Promise((r) => setTimeout(r, 10));
      if (Date.now() > deadline + 5000) throw new Error(`could not take the lock ${file}`);
    }
  };
  return attempt();
}

function releaser(file: string): () => void {
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
