import Type from "typebox";

/** File formats of a policy version folder. The README's policy guide documents them. */
const Id = Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_.:-]{0,127}$" });
const Name = Type.String({ pattern: "^[A-Za-z][A-Za-z0-9_-]{0,63}$" });
const OneOrMany = Type.Union([Name, Type.Array(Name, { minItems: 1 })]);
const Method = Type.Union([
  Type.Literal("GET"), Type.Literal("HEAD"), Type.Literal("POST"), Type.Literal("PUT"),
  Type.Literal("PATCH"), Type.Literal("DELETE"), Type.Literal("OPTIONS"), Type.Literal("*"),
]);

export const ManifestSchema = Type.Object(
  {
    version: Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" }),
    summary: Type.String({ minLength: 1 }),
    created: Type.String({ format: "date-time" }),
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

const ScopeId = Type.String({ pattern: "^[a-z][a-z0-9_-]{0,62}(:[a-z][a-z0-9_-]{0,62})?$" });

/** scopes.yaml: named rule subsets an API key may be limited to; a key gets its owner's ability ∩ its scopes. */
export const ScopeFileSchema = Type.Object(
  {
    scopes: Type.Array(
      Type.Object(
        {
          id: ScopeId,
          description: Type.Optional(Type.String()),
          rules: Type.Array(RuleSchema, { minItems: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const EndpointSchema = Type.Object(
  {
    id: Id,
    methods: Type.Array(Method, { minItems: 1 }),
    path: Type.String({ pattern: "^/" }),
    action: Name,
    subject: Name,
    resource: Type.Optional(
      Type.Object(
        {
          from: Type.Union([Type.Literal("none"), Type.Literal("params"), Type.Literal("body"), Type.Literal("resolver")]),
          id: Type.Optional(Name),
        },
        { additionalProperties: false },
      ),
    ),
    fields: Type.Optional(Type.Literal("body")),
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

export const PolicyTestSchema = Type.Object(
  {
    tests: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1 }),
          principal: Type.Object(
            {
              roles: Type.Array(Name),
              attributes: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
              // Present: the principal is an API key limited to these scopes.
              scopes: Type.Optional(Type.Array(ScopeId)),
            },
            { additionalProperties: false },
          ),
          action: Name,
          subject: Name,
          resource: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          fields: Type.Optional(Type.Array(Type.String())),
          expect: Type.Union([Type.Literal("allow"), Type.Literal("deny")]),
          reason: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type Manifest = Type.Static<typeof ManifestSchema>;
export type RuleSpec = Type.Static<typeof RuleSchema>;
export type RoleFile = Type.Static<typeof RoleFileSchema>;
export type ScopeFile = Type.Static<typeof ScopeFileSchema>;
export type EndpointSpec = Type.Static<typeof EndpointSchema>;
export type PolicyTestFile = Type.Static<typeof PolicyTestSchema>;
export type PolicyTestCase = PolicyTestFile["tests"][number];
