import type { OutboxListFlags } from "./main.ts";
import { operate, operatorConfig } from "./operate.ts";
import { CliError } from "./cliError.ts";

/** `outbox list`: one message a line (tab-separated), or a JSON array. */
export async function outboxList(flags: OutboxListFlags): Promise<number> {
  if (flags.limit !== undefined && !/^\d{1,4}$/.test(flags.limit)) throw new CliError(`--limit takes a whole number, got ${flags.limit}`);
  const messages = await operate(operatorConfig(flags.config), "outbox.list", {
    ...(flags.to === undefined ? {} : { to: flags.to }),
    ...(flags.limit === undefined ? {} : { limit: Number(flags.limit) }),
  });
  if (flags.json === true) process.stdout.write(`${JSON.stringify(messages)}\n`);
  else for (const m of messages) process.stdout.write(`${[m.channel, m.at, m.to, m.kind, m.text.replace(/\s+/g, " ")].join("\t")}\n`);
  return 0;
}
