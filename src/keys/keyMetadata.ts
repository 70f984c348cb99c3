import Type from "#typebox";
import Value from "#typebox/value";

/** What the gateway keeps in the plugin's `metadata` column. Only the gateway writes it. */
export const KeyMetadataSchema = Type.Object({
  tier: Type.String(),
  scopes: Type.Array(Type.String()),
  /** Rotation: the key that replaced this one, and the one this replaced. */
  rotatedTo: Type.Optional(Type.String()),
  rotatedFrom: Type.Optional(Type.String()),
  revokedAt: Type.Optional(Type.String()),
});

export type KeyMetadata = Type.Static<typeof KeyMetadataSchema>;

/** Metadata that is missing or does not parse makes the key unusable (null), never a wider key. */
export function parseKeyMetadata(raw: unknown): KeyMetadata | null {
  let value: unknown = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch {
      return null;
    }
  }
  return Value.Check(KeyMetadataSchema, value) ? value : null;
}
