-- Two-factor authentication (Better Auth's two-factor plugin): the user's flag, the TOTP secret and
-- backup codes (both encrypted by Better Auth with the gateway's secret), and on each session whether
-- it was signed in with a second factor (set only by the two-factor verification routes; roles listed
-- in auth.twoFactor.requiredForRoles are withheld from sessions without it).
ALTER TABLE "user" ADD COLUMN "twoFactorEnabled" BOOLEAN DEFAULT false;
ALTER TABLE "session" ADD COLUMN "secondFactor" BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE "two_factor" (
    "id" TEXT NOT NULL,
    "secret" TEXT NOT NULL,
    "backupCodes" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "verified" BOOLEAN DEFAULT true,
    "failedVerificationCount" INTEGER DEFAULT 0,
    "lockedUntil" TIMESTAMP(3),

    CONSTRAINT "two_factor_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "two_factor_userId_key" ON "two_factor"("userId");
ALTER TABLE "two_factor" ADD CONSTRAINT "two_factor_userId_fkey" FOREIGN KEY ("userId") REFERENCES "user"("id") ON DELETE CASCADE ON UPDATE CASCADE;
