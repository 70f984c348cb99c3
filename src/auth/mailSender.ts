import { createTransport } from "nodemailer";
import type { PrismaClient } from "../generated/prisma/client.ts";

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** What the mail is for, e.g. "verify-email", "reset-password". */
  kind: string;
  /** The one-time token the mail carries, kept so development tools and tests can follow links. */
  token?: string;
}

/** Where Better Auth's verification and reset mails go. SMTP plugs in here. */
export interface MailSender {
  send(message: MailMessage): Promise<void>;
}

/** Development and tests: mails become rows of mail_outbox. */
export function outboxMailSender(prisma: PrismaClient): MailSender {
  return {
    async send(message) {
      await prisma.mailOutbox.create({ data: { to: message.to, subject: message.subject, text: message.text, kind: message.kind, token: message.token ?? null } });
    },
  };
}

/** Logs that a mail was sent, never its token or link. */
export function logMailSender(log: (msg: string) => void): MailSender {
  return {
    async send(message) {
      log(`mail "${message.kind}" to ${message.to} (content withheld from logs)`);
    },
  };
}

/** Production: mails go to an SMTP server (smtp:// with STARTTLS when offered, smtps:// for TLS). */
export function smtpMailSender(options: { url: string; from: string }): MailSender & { close(): void } {
  const transport = createTransport(options.url);
  return {
    async send(message) {
      await transport.sendMail({ from: options.from, to: message.to, subject: message.subject, text: message.text });
    },
    close: () => transport.close(),
  };
}
