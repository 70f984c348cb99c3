import { parsePhoneNumberWithError, ParseError, type CountryCode } from "libphonenumber-js/max";

export type PhoneNumberRefusal = "NOT_A_NUMBER" | "INVALID_COUNTRY" | "TOO_SHORT" | "TOO_LONG" | "INVALID_LENGTH" | "NOT_VALID" | "HAS_EXTENSION" | "COUNTRY_NOT_ALLOWED" | "NOT_MOBILE";

export interface PhoneNumberRules {
  /** ISO 3166 codes codes may be sent to; `*` any. Unset: any. */
  allowedCountries?: readonly string[];
  /** Refuse numbers that are not mobile ones (premium-rate, fixed lines, toll-free…). */
  mobileOnly?: boolean;
}

/**
 * A phone number as the gateway keeps it: E.164 (`+6281234567890`), read by libphonenumber-js with its
 * full metadata, a national form taken as one of `defaultCountry`. The number must be a valid one for
 * its country (a well-formed but unassigned range is refused too): codes are never sent to a guess.
 */
export function normalizePhoneNumber(raw: string, defaultCountry: string, rules: PhoneNumberRules = {}): { e164: string } | { refused: PhoneNumberRefusal } {
  if (raw.length > 40) return { refused: "TOO_LONG" };
  try {
    const parsed = parsePhoneNumberWithError(raw, { defaultCountry: defaultCountry as CountryCode, extract: false });
    if (!parsed.isValid()) return { refused: "NOT_VALID" };
    // An extension reaches a desk behind the number, not a phone a code can be sent to.
    if (parsed.ext !== undefined) return { refused: "HAS_EXTENSION" };
    // SMS pumping pays off on premium and foreign ranges: codes go to the countries the deployment serves, to mobiles.
    const allowed = rules.allowedCountries;
    if (allowed !== undefined && !allowed.includes("*") && (parsed.country === undefined || !allowed.includes(parsed.country))) return { refused: "COUNTRY_NOT_ALLOWED" };
    const type = parsed.getType();
    if (rules.mobileOnly === true && type !== "MOBILE" && type !== "FIXED_LINE_OR_MOBILE") return { refused: "NOT_MOBILE" };
    return { e164: parsed.number };
  } catch (error) {
    if (error instanceof ParseError && isRefusal(error.message)) return { refused: error.message };
    return { refused: "NOT_A_NUMBER" };
  }
}

const REFUSALS = new Set<string>(["NOT_A_NUMBER", "INVALID_COUNTRY", "TOO_SHORT", "TOO_LONG", "INVALID_LENGTH"]);
const isRefusal = (message: string): message is PhoneNumberRefusal => REFUSALS.has(message);
