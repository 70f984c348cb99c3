import Type, { type TSchema } from "#typebox";
import Value from "#typebox/value";
import { Settings } from "#typebox/system";

/**
 * File formats of a policy version folder. The README's policy guide documents them.
 * A `description` says in words what a value must look like: schemaProblems() quotes it when a value does not fit.
 */
const Id = Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_.:-]{0,127}$", description: "an id: a letter, then up to 127 letters, digits, _ . : or -" });
const Name = Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_-]{0,63}$", description: "a name: a letter, then up to 63 letters, digits, _ or -" });
const OneOrMany = Type.Union([Name, Type.Array(Name, { minItems: 1 })], { description: "a name or a non-empty list of names" });
const Method = Type.Union([
  Type.Literal("GET"), Type.Literal("HEAD"), Type.Literal("POST"), Type.Literal("PUT"),
  Type.Literal("PATCH"), Type.Literal("DELETE"), Type.Literal("OPTIONS"), Type.Literal("*"),
]);

export const ManifestSchema = Type.Object(
  {
    version: Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description: "a version: a letter or digit, then up to 63 letters, digits, . _ or -" }),
    summary: Type.String({ minLength: 1 }),
    created: Type.String({ format: "date-time", description: "a date and time such as 2026-11-26T09:00:00Z" }),
    principalAttributes: Type.Array(Name, { default: ["id", "email", "region"] }),
  },
  { additionalProperties: false },
);

export const RuleSchema = Type.Object(
  {
    id: Id,
    action: OneOrMany,
    subject: OneOrMany,
    fields: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    conditions: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    inverted: Type.Optional(Type.Boolean()),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const RoleFileSchema = Type.Object(
  {
    role: Name,
    description: Type.Optional(Type.String()),
    rules: Type.Array(RuleSchema),
  },
  { additionalProperties: false },
);

const ScopeId = Type.String({
  pattern: "^[a-z][a-z0-9_-]{0,62}(:[a-z][a-z0-9_-]{0,62})?$",
  description: "a scope id: lower-case letters, digits, _ or -, starting with a letter, optionally two such words joined by a colon (catalog:read)",
});

export const ScopeSchema = Type.Object(
  {
    id: ScopeId,
    description: Type.Optional(Type.String()),
    rules: Type.Array(RuleSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

/** scopes.yaml: named rule subsets an API key may be limited to; a key gets its owner's ability ∩ its scopes. */
export const ScopeFileSchema = Type.Object(
  {
    scopes: Type.Array(ScopeSchema),
  },
  { additionalProperties: false },
);

const AttributeType = Type.Union([Type.Literal("string"), Type.Literal("number"), Type.Literal("boolean"), Type.Literal("list")], {
  description: 'an attribute type: "string", "number", "boolean" or "list"',
});

/**
 * subjects.yaml (optional): what each subject is. With it, validate checks every rule, endpoint and
 * test against it: subjects and actions that exist, fields and condition attributes the subject has,
 * condition values of the attribute's type.
 */
export const SubjectFileSchema = Type.Object(
  {
    subjects: Type.Array(
      Type.Object(
        {
          name: Name,
          description: Type.Optional(Type.String()),
          actions: Type.Array(Name, { minItems: 1 }),
          attributes: Type.Record(Type.String(), AttributeType),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type SubjectSpec = Type.Static<typeof SubjectFileSchema>["subjects"][number];

export const EndpointSchema = Type.Object(
  {
    id: Id,
    methods: Type.Array(Method, { minItems: 1 }),
    path: Type.String({ pattern: "^/", description: "a path pattern starting with /" }),
    action: Name,
    subject: Name,
    resource: Type.Optional(
      Type.Object(
        {
          from: Type.Union([Type.Literal("none"), Type.Literal("params"), Type.Literal("body"), Type.Literal("resolver"), Type.Literal("filter")]),
          id: Type.Optional(Name),
        },
        { additionalProperties: false },
      ),
    ),
    fields: Type.Optional(Type.Literal("body")),
    // Opt-in: the gateway removes from the JSON answer every field the caller may not read.
    response: Type.Optional(
      Type.Object(
        {
          fields: Type.Literal("masked"),
          at: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "the property of an envelope object that holds the records" })),
          maxBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 * 1024 * 1024, description: "the largest answer buffered for masking (default 1 MiB); a larger one is refused with 502" })),
        },
        { additionalProperties: false },
      ),
    ),
    // Its own bucket per caller (key, user or address) replacing the tier/session/anonymous limit here.
    rateLimit: Type.Optional(
      Type.Object(
        {
          max: Type.Integer({ minimum: 1 }),
          windowMs: Type.Integer({ minimum: 1000, maximum: 86400000, default: 60000 }),
        },
        { additionalProperties: false },
      ),
    ),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const EndpointFileSchema = Type.Object({ endpoints: Type.Array(EndpointSchema) }, { additionalProperties: false });

/** Who a policy test asks as: a role set, the attributes conditions read, and (an API key) its scopes. */
export const TestPrincipalSchema = Type.Object(
  {
    roles: Type.Array(Name),
    attributes: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    // Present: the principal is an API key limited to these scopes.
    scopes: Type.Optional(Type.Array(ScopeId)),
  },
  { additionalProperties: false },
);

export const PolicyTestCaseSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    principal: TestPrincipalSchema,
    action: Name,
    subject: Name,
    resource: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    fields: Type.Optional(Type.Array(Type.String())),
    expect: Type.Union([Type.Literal("allow"), Type.Literal("deny")]),
    reason: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const Status = Type.Union([Type.Literal(200), Type.Literal(401), Type.Literal(403), Type.Literal(404)], {
  description: "a status: 200 (forwarded to the upstream), 401, 403 or 404",
});

/** What one principal should get: a status, optionally the reason and the deciding rule's id. */
export const ExpectedAnswerSchema = Type.Union(
  [
    Status,
    Type.Object(
      {
        status: Status,
        reason: Type.Optional(Type.String({ minLength: 1 })),
        rule: Type.Optional(Id),
      },
      { additionalProperties: false },
    ),
  ],
  { description: "a status (200, 401, 403, 404) or a mapping { status, reason, rule }" },
);

/**
 * A policy test written as a request, decided exactly as the gateway decides it: the endpoint table,
 * the resource's attributes (from the path, the body, or `resource` for what the upstream's resolver
 * would answer) and field rules. `expect` names principals (from `principals`, or a role name alone)
 * and what each gets, so one case is one row of the endpoint × role table.
 */
export const RequestTestCaseSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    request: Type.Object(
      {
        method: Type.Union([
          Type.Literal("GET"), Type.Literal("HEAD"), Type.Literal("POST"), Type.Literal("PUT"),
          Type.Literal("PATCH"), Type.Literal("DELETE"), Type.Literal("OPTIONS"),
        ]),
        path: Type.String({ pattern: "^/[^?#]*$", description: "a canonical path starting with / (no query)" }),
        body: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      },
      { additionalProperties: false },
    ),
    resource: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    expect: Type.Record(Type.String(), ExpectedAnswerSchema, { minProperties: 1 }),
  },
  { additionalProperties: false },
);

export const PolicyTestSchema = Type.Object(
  {
    /** Named principals the request cases of this file use. */
    principals: Type.Optional(Type.Record(Type.String(), TestPrincipalSchema)),
    tests: Type.Array(PolicyTestCaseSchema, { default: [] }),
    requests: Type.Array(RequestTestCaseSchema, { default: [] }),
  },
  { additionalProperties: false },
);

export type Manifest = Type.Static<typeof ManifestSchema>;
export type RuleSpec = Type.Static<typeof RuleSchema>;
export type RoleFile = Type.Static<typeof RoleFileSchema>;
export type ScopeFile = Type.Static<typeof ScopeFileSchema>;
export type ScopeSpec = Type.Static<typeof ScopeSchema>;
export type EndpointSpec = Type.Static<typeof EndpointSchema>;
export type PolicyTestFile = Type.Static<typeof PolicyTestSchema>;
export type PolicyTestCase = Type.Static<typeof PolicyTestCaseSchema>;
export type TestPrincipal = Type.Static<typeof TestPrincipalSchema>;
export type RequestTestCase = Type.Static<typeof RequestTestCaseSchema>;
export type ExpectedAnswer = Type.Static<typeof ExpectedAnswerSchema>;

export interface SchemaProblem {
  /** JSON pointer into the file ("/" for the whole file). */
  path: string;
  reason: string;
}

/** Typebox stops collecting at 8 errors by default; one wrong HTTP method alone yields 9. Raised only while a policy file is checked. */
const ERROR_BUFFER = 256;
const KINDS: Readonly<Record<string, string>> = { string: "text", integer: "a whole number", boolean: "true or false", array: "a list", object: "a mapping" };

/**
 * What is wrong with a parsed policy file (defaults not yet filled in), in the terms of the person editing it:
 * the offending key, what is expected instead, and a near miss where there is one ("did you mean"). No schema internals.
 */
export function schemaProblems(schema: TSchema, data: unknown): SchemaProblem[] {
  const limit = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: ERROR_BUFFER });
  let errors;
  try {
    errors = Value.Errors(schema, Value.Default(schema, structuredClone(data)));
  } finally {
    Settings.Set({ maxErrors: limit });
  }
  // The "schema is false" echo of each unknown key, and each branch of a union that failed as a whole, are said once below.
  errors = errors.filter((e) => e.keyword !== "boolean" && !e.schemaPath.includes("/anyOf/"));
  const suggested = new Set<string>();
  const problems: Array<SchemaProblem & { key: string | undefined }> = [];
  for (const e of errors) {
    const path = e.instancePath || "/";
    const at = schemaAt(schema, e.schemaPath);
    const params = e.params as Record<string, unknown>;
    const say = (reason: string, key?: string): void => void problems.push({ path, reason, key });
    switch (e.keyword) {
      case "additionalProperties": {
        const known = Object.keys(at.properties as object);
        // A key already given is not what the typo meant: `rule:` beside `role:` is `rules:`.
        const unused = known.filter((k) => !Object.hasOwn(valueAt(data, e.instancePath) as object, k));
        for (const key of params.additionalProperties as string[]) {
          const near = nearMiss(key, unused);
          if (near !== undefined) suggested.add(`${path} ${near}`);
          say(`unknown property "${key}"${near === undefined ? ` (allowed: ${known.join(", ")})` : `; did you mean "${near}"?`}`);
        }
        break;
      }
      case "required":
        for (const key of params.requiredProperties as string[]) say(`missing required property "${key}"`, key);
        break;
      case "anyOf": {
        const choices = (at.anyOf as Array<Record<string, unknown>>).map((branch) => branch.const);
        if (choices.every((c) => typeof c === "string")) say(oneOf(choices as string[], valueAt(data, e.instancePath)));
        else say(`must be ${String(at.description)}`);
        break;
      }
      case "const":
        say(oneOf([String(at.const)], valueAt(data, e.instancePath)));
        break;
      // Every list and text length limit in these formats is 1.
      case "minItems":
      case "minLength":
      case "minProperties":
        say("must not be empty");
        break;
      case "minimum":
        say(`must be at least ${String(params.limit)}`);
        break;
      case "maximum":
        say(`must be at most ${String(params.limit)}`);
        break;
      default:
        say(`must be ${typeof at.description === "string" ? at.description : (KINDS[String(params.type)] ?? e.message)}`);
    }
  }
  // `rule:` for `rules:` is one mistake: the suggestion says it, a "missing rules" beside it would not help.
  return problems.filter((p) => !suggested.has(`${p.path} ${String(p.key)}`)).map(({ path, reason }) => ({ path, reason }));
}

function oneOf(choices: string[], value: unknown): string {
  const near = typeof value === "string" ? nearMiss(value, choices) : undefined;
  const quoted = choices.map((c) => `"${c}"`);
  const expected = `must be ${quoted.length === 1 ? "" : "one of "}${quoted.join(", ")}`;
  return near === undefined ? expected : `${expected}; did you mean "${near}"?`;
}

/** The closest of `candidates` to a mistyped `word` (case, a letter or two wrong, missing, extra or swapped), if any is close. */
export function nearMiss(word: string, candidates: readonly string[]): string | undefined {
  const allowed = Math.max(1, Math.floor(word.length / 3));
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= allowed && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

/** Levenshtein distance: insertions, deletions and substitutions of one character each cost 1. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? Infinity) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((previous[j] ?? Infinity) + 1, (row[j - 1] ?? Infinity) + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length] ?? Infinity;
}

/** The sub-schema an error's schemaPath ("#/properties/rules/items") points at. */
function schemaAt(schema: TSchema, schemaPath: string): Record<string, unknown> {
  let at: unknown = schema;
  for (const segment of schemaPath.split("/").slice(1)) at = (at as Record<string, unknown>)[segment];
  return at as Record<string, unknown>;
}

/** The value an error's instancePath ("/rules/0/action") points at. */
function valueAt(data: unknown, instancePath: string): unknown {
  let at = data;
  for (const segment of instancePath.split("/").slice(1)) at = (at as Record<string, unknown>)[segment];
  return at;
}
