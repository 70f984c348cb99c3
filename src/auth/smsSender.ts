import type { PrismaClient } from "../generated/prisma/client.ts";
import type { GerbangConfig } from "../config/schema.ts";

export interface SmsMessage {
  /** E.164. */
  to: string;
  text: string;
  /** What the message is for: "sign-in-otp", "reset-password-otp". */
  kind: string;
}

/** Where one-time codes go. A send that throws fails the request that asked for it (503), never silently. */
export interface SmsSender {
  send(message: SmsMessage): Promise<void>;
}

/** Development and tests: messages become rows of sms_outbox (`gerbang outbox list`). */
export function outboxSmsSender(prisma: PrismaClient): SmsSender {
  return {
    async send(message) {
      await prisma.smsOutbox.create({ data: { to: message.to, text: message.text, kind: message.kind } });
    },
  };
}

/** Logs that a message was sent, never its text (it holds the code). */
export function logSmsSender(log: (msg: string) => void): SmsSender {
  return {
    async send(message) {
      log(`sms "${message.kind}" to a number in +${message.to.slice(1, 3)}… (number and content withheld from logs)`);
    },
  };
}

export interface TwilioOptions {
  accountSid: string;
  authToken: string;
  from: string;
  baseUrl: string;
  timeoutMs: number;
}

/** Why a provider refused or failed a send; its answer is not echoed (it may quote the number or the text). */
export class SmsSendFailed extends Error {
  override name = "SmsSendFailed";
}

/**
 * Twilio's Messages API: `POST /2010-04-01/Accounts/<sid>/Messages.json`, form-encoded `To`, `From`,
 * `Body`, HTTP basic auth with the account SID and auth token; `201` with the message's `sid` is sent.
 */
export function twilioSmsSender(options: TwilioOptions): SmsSender {
  const url = new URL(`/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`, options.baseUrl);
  const authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString("base64")}`;
  return {
    async send(message) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { authorization, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
          body: new URLSearchParams({ To: message.to, From: options.from, Body: message.text }),
          signal: AbortSignal.timeout(options.timeoutMs),
          redirect: "error",
        });
      } catch (error) {
        throw new SmsSendFailed(`SMS provider unreachable: ${error instanceof Error ? error.name : "error"}`);
      }
      const body = await response.text().catch(() => "");
      if (response.status !== 201 && response.status !== 200) throw new SmsSendFailed(`SMS provider answered ${response.status}`);
      let sid: unknown;
      try {
        sid = (JSON.parse(body) as { sid?: unknown }).sid;
      } catch {
        sid = undefined;
      }
      if (typeof sid !== "string" || sid === "") throw new SmsSendFailed("SMS provider's answer names no message");
    },
  };
}

/** The sender auth.phone.sms configures (loadConfig has checked Twilio's settings). */
export function smsSenderFor(config: GerbangConfig["auth"]["phone"]["sms"], prisma: PrismaClient, log: (msg: string) => void): SmsSender {
  if (config.transport === "outbox") return outboxSmsSender(prisma);
  if (config.transport === "log") return logSmsSender(log);
  const twilio = config.twilio;
  if (twilio?.authToken === undefined) throw new Error("auth.phone.sms.twilio.authToken is required");
  return twilioSmsSender({ ...twilio, authToken: twilio.authToken });
}
