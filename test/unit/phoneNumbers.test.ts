// Phone numbers are read by libphonenumber-js: whatever a client types, a number is either refused
// with a reason or one E.164 spelling, the same for every way of writing it.
import t from "tap";
import fc from "fast-check";
import { parsePhoneNumberWithError } from "libphonenumber-js/max";
import { normalizePhoneNumber } from "../../src/auth/phoneNumbers.ts";
import { OtpHasher } from "../../src/auth/phoneOtp.ts";

const E164 = /^\+[1-9]\d{6,14}$/;

t.test("any input: refused with a reason, or E.164 that normalises to itself", async (t) => {
  t.doesNotThrow(() => fc.assert(
    fc.property(fc.string({ maxLength: 50 }), fc.constantFrom("ID", "US", "GB", "SG"), (raw, country) => {
      const out = normalizePhoneNumber(raw, country);
      if ("refused" in out) return typeof out.refused === "string";
      return E164.test(out.e164) && "e164" in normalizePhoneNumber(out.e164, "US") && (normalizePhoneNumber(out.e164, "US") as { e164: string }).e164 === out.e164;
    }),
    { numRuns: 2000 },
  ));
});

t.test("Indonesian mobile numbers: every spelling is the same E.164 number", async (t) => {
  t.doesNotThrow(() => fc.assert(
    fc.property(fc.integer({ min: 11, max: 13 }), fc.stringMatching(/^\d{8}$/), fc.constantFrom(" ", "-", ".", ""), fc.boolean(), (prefix, rest, sep, international) => {
      const national = `08${prefix}${rest}`;
      const parsed = parsePhoneNumberWithError(national, { defaultCountry: "ID" });
      fc.pre(parsed.isValid());
      const expected = parsed.number;
      const digits = `8${prefix}${rest}`;
      const written = international ? `+62${sep}${digits.slice(0, 3)}${sep}${digits.slice(3, 7)}${sep}${digits.slice(7)}` : `0${digits.slice(0, 3)}${sep}${digits.slice(3, 7)}${sep}${digits.slice(7)}`;
      const out = normalizePhoneNumber(written, "ID");
      return "e164" in out && out.e164 === expected && out.e164.startsWith("+628");
    }),
    { numRuns: 500 },
  ));
});

t.test("refusals name the reason", async (t) => {
  t.same(normalizePhoneNumber("+62 812 3456 7890 ext 5", "ID"), { refused: "HAS_EXTENSION" });
  t.same(normalizePhoneNumber("+999 1234", "ID"), { refused: "INVALID_COUNTRY" });
  t.same(normalizePhoneNumber("hello", "ID"), { refused: "NOT_A_NUMBER" });
  t.same(normalizePhoneNumber("9".repeat(41), "ID"), { refused: "TOO_LONG" });
  t.same(normalizePhoneNumber("+62 21 123", "ID"), { refused: "NOT_VALID" });
});

t.test("only phone codes are stored as digests, bound to their number and to the secret", async (t) => {
  const hasher = new OtpHasher("s".repeat(40));
  t.equal(hasher.storedValue("reset-password:abc", "user-id"), "user-id", "other verification rows are untouched");
  const stored = hasher.storedValue("phone-number-otp-+6281234567890", "123456:0");
  t.match(stored, /^h:[A-Za-z0-9_-]{43}:0$/);
  t.not(stored, hasher.storedValue("phone-number-otp-+6281234567891", "123456:0"), "another number, another digest");
  t.not(stored, new OtpHasher("t".repeat(40)).storedValue("phone-number-otp-+6281234567890", "123456:0"), "another secret, another digest");
  t.not(stored, hasher.storedValue("phone-number-reset-+6281234567890", "123456:0"), "a reset code is not a sign-in code");
});
