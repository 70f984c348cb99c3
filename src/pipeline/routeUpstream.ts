import type { UpstreamConfig } from "../config/schema.ts";

/** Longest-prefix routing on segment boundaries: `/api/admin` never owns `/api/administrator`. */
export class UpstreamTable {
  private readonly entries: UpstreamConfig[];

  constructor(upstreams: readonly UpstreamConfig[]) {
    this.entries = [...upstreams].sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string): UpstreamConfig | null {
    for (const upstream of this.entries) {
      const prefix = upstream.prefix === "/" ? "" : upstream.prefix.replace(/\/$/, "");
      if (prefix === "" || path === prefix || path.startsWith(`${prefix}/`)) return upstream;
    }
    return null;
  }

  byName(name: string): UpstreamConfig | undefined {
    return this.entries.find((u) => u.name === name);
  }

  get all(): readonly UpstreamConfig[] {
    return this.entries;
  }
}
