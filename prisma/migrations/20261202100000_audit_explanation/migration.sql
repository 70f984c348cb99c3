-- Each audit row says why, not only what: the endpoint matched, the fields that blocked a denial, and the
-- inputs of the decision (principal attributes, resource attributes, fields, key scopes; bounded) so that
-- `gerbang policy diff --replay` can decide the same request again under another version.
ALTER TABLE "audit_decision" ADD COLUMN "endpoint_id" TEXT;
ALTER TABLE "audit_decision" ADD COLUMN "blocked_fields" TEXT;
ALTER TABLE "audit_decision" ADD COLUMN "decision_input" JSONB;
