-- Sign-in and sign-up by phone (Better Auth's phone-number plugin): the user's E.164 number, unique.
ALTER TABLE "user" ADD COLUMN "phoneNumber" TEXT;
ALTER TABLE "user" ADD COLUMN "phoneNumberVerified" BOOLEAN DEFAULT false;
CREATE UNIQUE INDEX "user_phoneNumber_key" ON "user"("phoneNumber");

-- The development SMS outbox (auth.phone.sms.transport: outbox), read by `gerbang outbox list`.
CREATE TABLE "sms_outbox" (
    "id" BIGSERIAL NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "to" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    CONSTRAINT "sms_outbox_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "sms_outbox_to_idx" ON "sms_outbox"("to");

-- When a code was last sent to a number: the resend cool-down, shared by every instance.
CREATE TABLE "sms_cooldown" (
    "number" TEXT NOT NULL,
    "sent_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "sms_cooldown_pkey" PRIMARY KEY ("number")
);
