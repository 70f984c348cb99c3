import { ConfigSchema } from "../../src/config/schema.ts";

interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  minItems?: number;
  pattern?: string;
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  patternProperties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  /** Documentation only: how the default reads when it is computed or not a literal. */
  defaultText?: string;
  /** Documentation only: the type in words where the schema's own shape says it badly. */
  typeText?: string;
}

export interface ConfigField {
  path: string;
  type: string;
  default: string;
  description: string;
}

const code = (text: string): string => `\`${text}\``;

function typeOf(s: JsonSchema): string {
  if (s.typeText !== undefined) return s.typeText;
  if (s.anyOf !== undefined) {
    const literals = s.anyOf.filter((a) => a.const !== undefined).map((a) => code(String(a.const)));
    if (literals.length === s.anyOf.length) return literals.join(" \\| ");
    return s.anyOf.map(typeOf).join(" or ");
  }
  if (s.const !== undefined) return code(String(s.const));
  switch (s.type) {
    case "integer":
    case "number": {
      const range = s.minimum !== undefined && s.maximum !== undefined ? ` ${s.minimum}–${s.maximum}` : s.minimum !== undefined ? ` ≥ ${s.minimum}` : s.maximum !== undefined ? ` ≤ ${s.maximum}` : "";
      return `${s.type}${range}`;
    }
    case "string":
      return s.pattern !== undefined ? `string ${code(s.pattern)}` : s.minLength !== undefined ? `string, ≥ ${s.minLength} chars` : "string";
    case "boolean":
      return "boolean";
    case "array":
      return `array of ${s.items === undefined ? "items" : typeOf(s.items)}${s.minItems !== undefined ? `, ≥ ${s.minItems}` : ""}`;
    case "object":
      if (s.patternProperties !== undefined || typeof s.additionalProperties === "object") return "map";
      return "object";
    default:
      return "any";
  }
}

function defaultOf(s: JsonSchema): string {
  if (s.defaultText !== undefined) return s.defaultText;
  if (s.default === undefined) return "none";
  if (typeof s.default === "object" && s.default !== null && Object.keys(s.default).length === 0) return Array.isArray(s.default) ? "`[]`" : "(each field's default)";
  return code(typeof s.default === "string" ? s.default : JSON.stringify(s.default));
}

/** Every documented field of the config schema, depth first, in declaration order. */
export function configFields(schema: JsonSchema = ConfigSchema as unknown as JsonSchema, prefix = ""): ConfigField[] {
  const fields: ConfigField[] = [];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix === "" ? name : `${prefix}.${name}`;
    const element = child.type === "array" && child.items?.type === "object" ? child.items : null;
    // An object documented as a whole (its default spelled out) is one row; otherwise each field is.
    const nested = child.type === "object" && child.properties !== undefined && Object.keys(child.properties).length > 0 && child.defaultText === undefined;
    if (child.description !== undefined || (!nested && element === null)) {
      fields.push({ path, type: typeOf(child), default: defaultOf(child), description: child.description ?? "" });
    }
    if (nested) fields.push(...configFields(child, path));
    if (element !== null) fields.push(...configFields(element, `${path}[]`));
  }
  return fields;
}

export function configReferenceTable(): string {
  const escape = (text: string): string => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
  return ["| field | type | default | description |", "|---|---|---|---|", ...configFields().map((f) => `| ${code(f.path)} | ${f.type} | ${f.default} | ${escape(f.description)} |`)].join("\n");
}
