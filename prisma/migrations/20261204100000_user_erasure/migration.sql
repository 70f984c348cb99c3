-- Erasure in two steps: a deleted user is soft-deleted at once (deletedAt; sign-in refused through the
-- ban fields, sessions ended, keys revoked but kept), and purged after the grace period (purgeAfter):
-- personal data is overwritten and the user's own rows removed, while the row itself stays as a
-- tombstone with its id (purgedAt), which the audit trail refers to.
ALTER TABLE "user" ADD COLUMN "deletedAt" TIMESTAMP(3);
ALTER TABLE "user" ADD COLUMN "purgeAfter" TIMESTAMP(3);
ALTER TABLE "user" ADD COLUMN "purgedAt" TIMESTAMP(3);
-- The purge looks for due users only.
CREATE INDEX "user_purgeAfter_idx" ON "user"("purgeAfter") WHERE "purgedAt" IS NULL AND "purgeAfter" IS NOT NULL;
