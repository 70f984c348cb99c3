// The log is buffered (logFlushMs) and must still be complete when the gateway stops: every line
// made before SIGTERM is written, even with a flush interval far longer than the test.
import t from "tap";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { eventually } from "../helpers/eventually.ts";

const pgMissing = await serviceGate("postgres");

t.test("buffered log lines are written on exit, and by the timer while running", { skip: pgMissing }, async (t) => {
  const env = await startGatewayEnv({ postgres: true, config: { logLevel: "info", logFlushMs: 10_000 } });
  t.teardown(() => env.close());
  const answer = await fetch(`${env.url}/api/products`);
  await answer.arrayBuffer();
  const id = answer.headers.get("x-request-id") ?? "";
  await new Promise((r) => setTimeout(r, 500));
  t.notOk(env.gateway.output().includes(`"reqId":"${id}"`), "with a long interval, the access line is still in the buffer");
  t.equal(await env.gateway.stop(), 0, "the gateway stops cleanly");
  t.match(env.gateway.output(), new RegExp(`"reqId":"${id}"[^\\n]*"msg":"request"`), "and its access line is written on the way out");
});

t.test("with the default interval, lines arrive without an exit", { skip: pgMissing }, async (t) => {
  const env = await startGatewayEnv({ postgres: true, config: { logLevel: "info" } });
  t.teardown(() => env.close());
  const answer = await fetch(`${env.url}/api/products`);
  await answer.arrayBuffer();
  const id = answer.headers.get("x-request-id") ?? "";
  t.ok(await eventually(() => env.gateway.output().includes(`"reqId":"${id}"`), 2000), "the access line is written within the flush interval");
});
