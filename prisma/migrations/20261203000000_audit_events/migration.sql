-- One audit trail for every event, not only routed decisions (sign-ins, key and policy changes), made
-- tamper-evident: each row is hash-chained to its predecessor in its instance's chain and chain heads
-- are checkpointed into signed rows (docs/audit.md describes the canonical serialisation).
ALTER TABLE "audit_decision" RENAME TO "audit_event";
ALTER INDEX "audit_decision_pkey" RENAME TO "audit_event_pkey";
ALTER INDEX "audit_decision_at_idx" RENAME TO "audit_event_at_idx";
ALTER SEQUENCE "audit_decision_id_seq" RENAME TO "audit_event_id_seq";

ALTER TABLE "audit_event" ADD COLUMN "action" TEXT NOT NULL DEFAULT 'request';
ALTER TABLE "audit_event" ALTER COLUMN "action" DROP DEFAULT;
-- Events that no request carried (an instance activating a version) have no request, method, path or status.
ALTER TABLE "audit_event" ALTER COLUMN "request_id" DROP NOT NULL;
ALTER TABLE "audit_event" ALTER COLUMN "method" DROP NOT NULL;
ALTER TABLE "audit_event" ALTER COLUMN "path" DROP NOT NULL;
ALTER TABLE "audit_event" ALTER COLUMN "status" DROP NOT NULL;
ALTER TABLE "audit_event" ADD COLUMN "instance" TEXT;
ALTER TABLE "audit_event" ADD COLUMN "seq" BIGINT;
ALTER TABLE "audit_event" ADD COLUMN "key_id" TEXT;
ALTER TABLE "audit_event" ADD COLUMN "client_ip" TEXT;
ALTER TABLE "audit_event" ADD COLUMN "target" TEXT;
ALTER TABLE "audit_event" ADD COLUMN "trace_id" TEXT;
ALTER TABLE "audit_event" ADD COLUMN "details" JSONB;
ALTER TABLE "audit_event" ADD COLUMN "prev_hash" TEXT;
ALTER TABLE "audit_event" ADD COLUMN "hash" TEXT;
-- Rows written before this migration have no chain (instance, seq and hash are null): `audit verify`
-- counts them apart and refuses any unchained row newer than the boundary recorded below.

-- Re-sending a batch whose commit was not acknowledged must not fork the chain.
CREATE UNIQUE INDEX "audit_event_instance_seq_key" ON "audit_event"("instance", "seq");
-- Indexes for `audit search` and GET /api/audit/events, chosen for their cost on the write path (every
-- routed request is a row; each b-tree costs PostgreSQL about 4 µs a row): time ranges by BRIN (rows are
-- appended in time order), an actor's events and a request by b-tree, and the rare rows (denials,
-- events other than routed requests) by partial indexes that allowed requests never touch.
DROP INDEX "audit_event_at_idx";
CREATE INDEX "audit_event_at_idx" ON "audit_event" USING BRIN ("at");
CREATE INDEX "audit_event_principal_id_at_idx" ON "audit_event"("principal_id", "at") WHERE "principal_id" IS NOT NULL;
CREATE INDEX "audit_event_request_id_idx" ON "audit_event"("request_id");
CREATE INDEX "audit_event_action_at_idx" ON "audit_event"("action", "at") WHERE "action" <> 'request';
CREATE INDEX "audit_event_denied_reason_at_idx" ON "audit_event"("reason", "at") WHERE NOT "allowed";

CREATE TABLE "audit_checkpoint" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "instance" TEXT NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" TEXT NOT NULL,
    -- periodic | final (the instance stopped) | retention (rows up to seq were deleted) | legacy
    "kind" TEXT NOT NULL,
    "kid" TEXT,
    "signature" TEXT,
    CONSTRAINT "audit_checkpoint_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "audit_checkpoint_instance_seq_idx" ON "audit_checkpoint"("instance", "seq");

INSERT INTO "audit_checkpoint" ("instance", "seq", "hash", "kind")
  SELECT 'legacy', COALESCE(MAX("id"), 0), '', 'legacy' FROM "audit_event";
