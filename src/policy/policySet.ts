import type { EndpointMatcher } from "./endpointMatcher.ts";
import type { Conditions } from "./conditions.ts";
import type { Manifest, PolicyTestCase, RequestTestCase, TestPrincipal } from "./schema.ts";

/** A raw rule as written in a role file, kept apart from compiled abilities (CASL's RawRule). */
export interface RawPolicyRule {
  id: string;
  role: string;
  action: string | string[];
  subject: string | string[];
  fields?: string[];
  conditions?: Conditions;
  inverted?: boolean;
  description?: string;
}

/** One validated, immutable policy version. */
export interface PolicySet {
  version: string;
  manifest: Manifest;
  dir: string;
  rulesByRole: ReadonlyMap<string, readonly RawPolicyRule[]>;
  /** API key scopes by id (scopes.yaml); their rules carry role `scope:<id>`. */
  scopes: ReadonlyMap<string, { description?: string; rules: readonly RawPolicyRule[] }>;
  matcher: EndpointMatcher;
  tests: ReadonlyArray<PolicyTestCase & { file: string }>;
  /** Rules that can never have an effect (validate prints them; they do not make the version invalid). */
  warnings: readonly PolicyProblem[];
  /** Tests written as requests, each principal named in `expect` resolved. */
  requestTests: readonly RequestTest[];
}

export interface RequestTest {
  file: string;
  name: string;
  request: RequestTestCase["request"];
  resource?: Record<string, unknown>;
  cells: ReadonlyArray<{ principal: string; as: TestPrincipal; expect: { status: number; reason?: string; rule?: string } }>;
}

export interface PolicyProblem {
  file: string;
  /** 1-based line in the file, where the problem has one. */
  line?: number;
  path: string;
  reason: string;
}

/** `file:line path: reason`, the line the CLI, the reload log and activation print for a problem. */
export const formatProblem = (p: PolicyProblem): string => `${p.file}${p.line === undefined ? "" : `:${p.line}`}${p.path ? ` ${p.path}` : ""}: ${p.reason}`;

export class PolicyError extends Error {
  readonly problems: PolicyProblem[];

  constructor(problems: PolicyProblem[]) {
    super(`invalid policy set:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
    this.problems = problems;
    this.name = "PolicyError";
  }
}
