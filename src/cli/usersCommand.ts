import { parseArgs } from "node:util";
import { createVerifiedUser } from "../auth/createUser.ts";
import { CliError } from "./cliError.ts";
import { openOperatorContext } from "./operatorContext.ts";

export async function usersCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "create") throw new CliError(`unknown users command ${sub ?? "(none)"}`);
  let values: { config?: string; email?: string; password?: string; role?: string; name?: string; attr?: string[] };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { config: { type: "string" }, email: { type: "string" }, password: { type: "string" }, role: { type: "string" }, name: { type: "string" }, attr: { type: "string", multiple: true } },
      strict: true,
    }));
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const { email, password, role } = values;
  if (email === undefined || password === undefined || role === undefined) throw new CliError("users create needs --email, --password and --role");
  const attributes: Record<string, string> = {};
  for (const pair of values.attr ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CliError(`--attr takes key=value, got ${pair}`);
    attributes[pair.slice(0, eq)] = pair.slice(eq + 1);
  }

  const ctx = await openOperatorContext(values.config);
  try {
    const id = await createVerifiedUser(ctx.auth, ctx.db.prisma, { email, password, role, attributes, ...(values.name === undefined ? {} : { name: values.name }) });
    process.stdout.write(`${id}\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}
