-- Policy activation: which version every instance must serve, recorded with who, when and why.
-- The newest row is the active version; older rows are its history (rollback goes to the one before).
CREATE TABLE "policy_activation" (
    "id" BIGSERIAL NOT NULL,
    "version" TEXT NOT NULL,
    "digest" TEXT NOT NULL,
    "activated_by" TEXT NOT NULL,
    "reason" TEXT,
    "activated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "policy_activation_pkey" PRIMARY KEY ("id")
);

-- Each running gateway instance, as its heartbeat last reported it: the version and digest it serves,
-- and why it does not serve the recorded one when it cannot.
CREATE TABLE "gateway_instance" (
    "id" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "version" TEXT NOT NULL,
    "digest" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "problem" TEXT,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "seen_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "gateway_instance_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "gateway_instance_seen_at_idx" ON "gateway_instance"("seen_at");
