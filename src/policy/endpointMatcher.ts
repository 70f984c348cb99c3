import type { EndpointSpec } from "./schema.ts";

/**
 * Endpoint patterns compiled once per policy version. Segments are literals, `:name` parameters
 * (one non-empty segment) or a final `**` (this path and everything below it). The most specific
 * pattern wins: literal segments beat parameters beat `**`, so `/api/admin/**` never catches
 * `/api/administrator` and `/api/shops/:id` never shadows `/api/shops/mine`.
 */
export interface CompiledEndpoint {
  spec: EndpointSpec;
  methods: ReadonlySet<string>;
  segments: ReadonlyArray<{ kind: "literal"; value: string } | { kind: "param"; name: string }>;
  rest: boolean;
  paramNames: readonly string[];
}

export interface EndpointMatch {
  endpoint: CompiledEndpoint;
  params: Record<string, string>;
}

export function compileEndpoint(spec: EndpointSpec, caseInsensitive: boolean): CompiledEndpoint {
  const parts = spec.path === "/" ? [] : spec.path.slice(1).split("/");
  const rest = parts.at(-1) === "**";
  if (rest) parts.pop();
  const segments = parts.map((p) =>
    p.startsWith(":") ? ({ kind: "param", name: p.slice(1) } as const) : ({ kind: "literal", value: caseInsensitive ? p.toLowerCase() : p } as const),
  );
  return {
    spec,
    methods: new Set(spec.methods),
    segments,
    rest,
    paramNames: segments.flatMap((s) => (s.kind === "param" ? [s.name] : [])),
  };
}

/** Problems in a single pattern, as messages. */
export function patternProblems(path: string): string[] {
  if (path === "/") return [];
  const parts = path.slice(1).split("/");
  const problems: string[] = [];
  const seen = new Set<string>();
  parts.forEach((p, i) => {
    if (p === "**") {
      if (i !== parts.length - 1) problems.push("** may only be the last segment");
    } else if (p.startsWith(":")) {
      if (!/^:[A-Za-z][A-Za-z0-9_]*$/.test(p)) problems.push(`bad parameter ${p}`);
      else if (seen.has(p)) problems.push(`duplicate parameter ${p}`);
      seen.add(p);
    } else if (!/^[A-Za-z0-9._~-]+$/.test(p) || p === "." || p === "..") {
      problems.push(`segment "${p}" is not a canonical literal`);
    }
  });
  return problems;
}

export class EndpointMatcher {
  private readonly endpoints: CompiledEndpoint[];
  private readonly inOrder: readonly CompiledEndpoint[];

  constructor(endpoints: CompiledEndpoint[]) {
    this.inOrder = endpoints;
    this.endpoints = [...endpoints].sort(bySpecificity);
  }

  /** The endpoint with this id, if the version has one. */
  spec(id: string): EndpointSpec | undefined {
    return this.inOrder.find((e) => e.spec.id === id)?.spec;
  }

  /** Every endpoint's id, in the order of the version's files. */
  endpointIds(): string[] {
    return this.inOrder.map((e) => e.spec.id);
  }

  /** `path` is already canonical (see normalizeTarget); HEAD falls back to GET rules. */
  match(method: string, path: string): EndpointMatch | null {
    const found = this.find(method, path);
    if (found !== null || method !== "HEAD") return found;
    return this.find("GET", path);
  }

  private find(method: string, path: string): EndpointMatch | null {
    const parts = path === "/" ? [] : path.slice(1).split("/");
    for (const endpoint of this.endpoints) {
      if (!endpoint.methods.has(method) && !endpoint.methods.has("*")) continue;
      const params = matchSegments(endpoint, parts);
      if (params !== null) return { endpoint, params };
    }
    return null;
  }
}

/**
 * Compares position by position: at the first position where two patterns differ, a literal beats
 * a parameter, which beats the end of a fixed pattern, which beats `**`. So `/api/admin/**` wins
 * over `/api/:section/:id` for `/api/admin/users`, whatever the segment counts.
 */
function bySpecificity(a: CompiledEndpoint, b: CompiledEndpoint): number {
  // The end of a fixed pattern outranks `**` so `/api/x` wins over `/api/x/**` for the path `/api/x`.
  const rank = (e: CompiledEndpoint, i: number): number => {
    const seg = e.segments[i];
    if (seg !== undefined) return seg.kind === "literal" ? 4 : 3;
    if (i === e.segments.length) return e.rest ? 1 : 2;
    return 0;
  };
  const length = Math.max(a.segments.length, b.segments.length) + 1;
  for (let i = 0; i < length; i++) {
    const diff = rank(b, i) - rank(a, i);
    if (diff !== 0) return diff;
  }
  return 0;
}

function matchSegments(endpoint: CompiledEndpoint, parts: string[]): Record<string, string> | null {
  const { segments, rest } = endpoint;
  if (rest ? parts.length < segments.length : parts.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    const part = parts[i];
    if (seg === undefined || part === undefined) return null;
    if (seg.kind === "literal") {
      if (seg.value !== part) return null;
    } else {
      if (part === "") return null;
      params[seg.name] = part;
    }
  }
  return params;
}
