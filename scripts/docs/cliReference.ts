import type { Command, Option } from "commander";
import { buildProgram } from "../../src/cli/main.ts";

function flagRow(o: Option): string {
  const def = o.defaultValue === undefined || o.defaultValue === "" ? "" : ` (default \`${String(o.defaultValue)}\`)`;
  return `| \`${o.flags}\` | ${o.mandatory ? "required" : "optional"} | ${o.description}${def} |`;
}

function sections(command: Command, path: string[]): string[] {
  if (command.commands.length > 0) return command.commands.filter((c) => c.name() !== "help").flatMap((c) => sections(c, [...path, c.name()]));
  const args = command.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`));
  const description = command.description();
  const out = [`### \`gerbang ${[...path, ...args].join(" ")}\``, "", `${description.charAt(0).toUpperCase()}${description.slice(1)}.`, ""];
  if (command.options.length > 0) out.push("| flag | | meaning |", "|---|---|---|", ...command.options.map(flagRow), "");
  return out;
}

/** One section per runnable command with its flags, from the same definition `gerbang help` prints. */
export function cliReferenceSections(): string {
  return sections(buildProgram(() => undefined), []).join("\n").trimEnd();
}
