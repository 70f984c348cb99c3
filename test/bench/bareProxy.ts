// The bench's baseline: Fastify + @fastify/reply-from with nothing else, forwarding every path to the upstream.
import Fastify from "fastify";
import replyFrom from "@fastify/reply-from";

const [port, upstream] = [Number(process.argv[2] ?? 0), process.argv[3] ?? ""];
const app = Fastify({ logger: false });
// The same undici pool settings as the gateway's forward stage (src/app.ts).
await app.register(replyFrom, { base: upstream, disableRequestLogging: true, retryMethods: [], undici: { connections: 128, pipelining: 1 } });
app.all("/*", (request, reply) => reply.from(request.url));
await app.listen({ host: "127.0.0.1", port });
process.stdout.write("ready\n");
// A clean exit on SIGTERM, so --cpu-prof writes its profile.
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
