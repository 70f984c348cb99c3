import type { PrismaClient } from "../generated/prisma/client.ts";
import type { GerbangConfig } from "../config/schema.ts";
import type { PhoneRouteOptions } from "./authRoutes.ts";
import { claimSmsSlot, releaseSmsSlot } from "./phoneOtp.ts";

/** What the auth routes need for phone sign-in: the default country and the shared resend cool-down. */
export function phoneRoutes(prisma: PrismaClient, phone: GerbangConfig["auth"]["phone"]): PhoneRouteOptions {
  return {
    defaultCountry: phone.defaultCountry,
    rules: { allowedCountries: phone.allowedCountries, mobileOnly: true },
    sendBudget: { reason: "OTP_GLOBAL", key: "auth:otp:global", max: phone.maxSendsPerHour, windowMs: 3_600_000, mode: "closed", strict: true, quiet: true },
    claimSlot: (number) => (phone.resendCooldownSec === 0 ? Promise.resolve({ claimed: new Date() }) : claimSmsSlot(prisma, number, phone.resendCooldownSec)),
    releaseSlot: (number, claimed) => releaseSmsSlot(prisma, number, claimed),
  };
}
