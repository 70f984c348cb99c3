// Bypass regression suite, property test (issue 4): for random request targets built from the
// pieces real path-confusion bypasses use (dot segments raw and encoded, encoded separators,
// backslashes, `;` parameters, double encoding, overlong UTF-8, case and prefix variants), the real
// gateway either refuses the request and forwards nothing, or forwards exactly one request whose
// target is the canonical form the policy evaluated, inside the prefix the upstream owns.
import t from "tap";
import fc from "fast-check";
import { fileURLToPath } from "node:url";
import { serviceGate } from "../helpers/services.ts";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { rawRequest } from "../helpers/rawHttp.ts";
import { startRecordingUpstream } from "../helpers/recordingUpstream.ts";
import { normalizeTarget } from "../../src/pipeline/normalizeTarget.ts";

const pgMissing = await serviceGate("postgres");
const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());
const env = await startGatewayEnv({
  postgres: pgMissing === false,
  config: {
    policy: { dir: fileURLToPath(new URL("../fixtures/policies", import.meta.url)), version: "probe-1" },
    upstreams: [{ name: "probe", prefix: "/probe", url: upstream.url, timeoutMs: 5000 }],
  },
});
t.teardown(() => env.close());

// Pieces of published bypasses: CVE-2021-41773 (Apache, %2e), CVE-2021-42013 (double encoding),
// CVE-2020-5902 (F5, `..;` and `;` parameters), CVE-2000-0884 (IIS overlong UTF-8),
// encoded slashes and backslashes (CVE-2007-0450, Tomcat), case and prefix-boundary confusion.
const BENIGN = ["probe", "a", "b", "~", "%7E", "%41", "", "%C3%A9", "&", "=", "+", "%20", "x.y", "-_"];
const TRICKY = [
  "PROBE", "%70robe", "probex", "admin", ".", "..", "%2e", "%2E%2e", ".%2e", "..;", ";x=1", "%3b", "%252e", "%252f", "%25",
  "%2f", "%2F", "%5c", "\\", "%00", "%c0%ae", "%C0%AF", "%e0%80%ae", "%zz", "%", "?", "?_=/../admin", "#", "*",
];
const piece = fc.oneof({ arbitrary: fc.constantFrom(...BENIGN), weight: 4 }, { arbitrary: fc.constantFrom(...TRICKY), weight: 1 });
const first = fc.oneof({ arbitrary: fc.constant("probe"), weight: 5 }, { arbitrary: piece, weight: 1 });
const target = fc.tuple(first, fc.array(piece, { maxLength: 5 })).map(([head, rest]) => `/${[head, ...rest].join("/")}`);

t.test("random targets: refused and not forwarded, or forwarded exactly as authorized", async (t) => {
  let forwarded = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(target, async (raw) => {
      upstream.received.length = 0;
      const response = await rawRequest(env.url, `GET ${raw} HTTP/1.1\r\nHost: gateway.example\r\nConnection: close\r\n\r\n`);
      const expected = normalizeTarget(raw);
      if (response.status !== 200) {
        refused++;
        if (![400, 403, 404, 405].includes(response.status)) throw new Error(`${raw}: unexpected status ${response.status}`);
        if (upstream.received.length !== 0) throw new Error(`${raw}: refused with ${response.status} but forwarded ${upstream.received[0]?.url}`);
        return;
      }
      forwarded++;
      if (!expected.ok) throw new Error(`${raw}: forwarded although not canonicalizable (${expected.reason})`);
      if (upstream.received.length !== 1) throw new Error(`${raw}: ${upstream.received.length} requests upstream`);
      const url = upstream.received[0]?.url ?? "";
      if (url !== expected.path + expected.query) throw new Error(`${raw}: forwarded ${url}, authorized ${expected.path}${expected.query}`);
      const again = normalizeTarget(url);
      if (!again.ok || again.path + again.query !== url) throw new Error(`${raw}: forwarded target ${url} is not canonical`);
      if (!(expected.path === "/probe" || expected.path.startsWith("/probe/"))) throw new Error(`${raw}: forwarded outside /probe: ${url}`);
    }),
    { numRuns: 300, seed: Number(process.env.GERBANG_FC_SEED ?? Date.now() % 2147483647) },
  );
  t.ok(forwarded >= 50 && refused >= 50, `both outcomes were exercised (${forwarded} forwarded, ${refused} refused)`);
});
