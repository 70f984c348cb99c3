import { parseArgs } from "node:util";
import { loadConfig } from "../config/loadConfig.ts";
import { startGateway } from "../runtime/startGateway.ts";
import { DEMO_USERS } from "../demo/seedDemo.ts";
import { CliError } from "./cliError.ts";

export async function serveCommand(argv: string[]): Promise<number> {
  let values: { config?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: "string" } }, strict: true }));
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const config = loadConfig(values.config === undefined ? {} : { file: values.config });
  const gateway = await startGateway(config);

  if (gateway.demo !== null) process.stdout.write(tryItText(config.server.publicUrl ?? `http://localhost:${config.server.port}`, config.demo.seedUsers ?? config.demo.upstream));

  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      gateway.app.log.info({ signal }, "shutting down");
      const force = setTimeout(() => {
        gateway.app.log.error("shutdown grace period over; exiting");
        process.exit(1);
      }, config.server.shutdownGraceMs);
      force.unref();
      void gateway.close().then(resolve, () => resolve());
    };
    if (config.policy.reloadOnSignal) process.on("SIGHUP", () => void gateway.reloadPolicy());
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return 0;
}

function tryItText(url: string, seeded: boolean): string {
  const [admin, user, , sales] = DEMO_USERS;
  const signIn = (email: string, password: string): string =>
    `curl -s -D - -o /dev/null ${url}/api/auth/sign-in/email -H 'content-type: application/json' -d '{"email":"${email}","password":"${password}"}' | sed -n 's/^set-auth-token: *//ip' | tr -d '\\r'`;
  return `
Gerbang is running at ${url} in front of the demo marketplace.

  Anyone may list products:        curl -s ${url}/api/products
  Inventory needs a session (401): curl -s ${url}/api/inventory
${seeded ? `
  Sign in (the token is in the set-auth-token header):
    ${signIn(user.email, user.password)}
    ${signIn(sales.email, sales.password)}
    ${signIn(admin.email, admin.password)}

  Then, with TOKEN set to it:
    curl -s ${url}/api/orders/ord_1 -H "authorization: Bearer $TOKEN"      # the user's own order: allowed
    curl -s ${url}/api/orders/ord_2 -H "authorization: Bearer $TOKEN"      # someone else's: 403
    curl -s ${url}/api/inventory -H "authorization: Bearer $TOKEN"         # sales and admin only
    curl -s -X PATCH ${url}/api/orders/ord_1 -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"status":"delivered"}'   # user: field not permitted
` : ""}
Stop with Ctrl-C.
`;
}
