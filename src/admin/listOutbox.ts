import Type from "#typebox";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { normalizePhoneNumber } from "../auth/phoneNumbers.ts";
import { OperationError } from "./operationError.ts";

export const OutboxInput = Type.Object(
  {
    to: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: "an email address or a phone number (any spelling of it)" })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  },
  { additionalProperties: false },
);

export interface OutboxMessage {
  at: string;
  channel: "sms" | "mail";
  to: string;
  kind: string;
  subject: string | null;
  text: string;
}

/**
 * The development outboxes (auth.mail.transport and auth.phone.sms.transport `outbox`), newest first:
 * where a demo user or a test reads the code or link a real deployment would have sent.
 */
export async function listOutbox(prisma: PrismaClient, input: Type.Static<typeof OutboxInput>, defaultCountry: string): Promise<OutboxMessage[]> {
  const take = input.limit ?? 50;
  let mailTo: string | undefined;
  let smsTo: string | undefined;
  if (input.to !== undefined) {
    if (input.to.includes("@")) mailTo = input.to.trim().toLowerCase();
    else {
      const number = normalizePhoneNumber(input.to, defaultCountry);
      if ("refused" in number) throw new OperationError(`--to ${input.to}: not an email address, and not a phone number (${number.refused})`);
      smsTo = number.e164;
    }
  }
  const [mails, texts] = await Promise.all([
    smsTo !== undefined ? [] : prisma.mailOutbox.findMany({ where: mailTo === undefined ? {} : { to: mailTo }, orderBy: { id: "desc" }, take }),
    mailTo !== undefined ? [] : prisma.smsOutbox.findMany({ where: smsTo === undefined ? {} : { to: smsTo }, orderBy: { id: "desc" }, take }),
  ]);
  const messages: OutboxMessage[] = [
    ...mails.map((m) => ({ at: m.createdAt.toISOString(), channel: "mail" as const, to: m.to, kind: m.kind, subject: m.subject, text: m.text })),
    ...texts.map((m) => ({ at: m.createdAt.toISOString(), channel: "sms" as const, to: m.to, kind: m.kind, subject: null, text: m.text })),
  ];
  return messages.sort((x, y) => (x.at < y.at ? 1 : x.at > y.at ? -1 : 0)).slice(0, take);
}
