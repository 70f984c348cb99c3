// The policy playground in headless Chromium (Debian's chromium, driven by playwright-core): an admin
// signs in, explains a denied request and sees the rule, diffs two versions, activates and rolls back
// for two instances under load;
// markup typed into a request is shown as text and never runs; the page's headers forbid inline script
// and framing; a non-admin gets 403.
import t from "tap";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { startGatewayEnv } from "../helpers/gatewayEnv.ts";
import { serviceGate, testRedisUrl } from "../helpers/services.ts";
import { writeStricterVersion } from "../helpers/policyVersions.ts";

const CHROMIUM = "/usr/bin/chromium";
const servicesMissing = (await serviceGate("postgres")) || (await serviceGate("redis"));
/** The page's globals, typed as little as these tests read (this file is not compiled against the DOM's types; functions run in the page, so no closure). */
type PageGlobals = { document: { querySelector(selector: string): { textContent: string | null } | null }; __pwned?: number };
t.test("the playground", { skip: existsSync(CHROMIUM) ? servicesMissing : `${CHROMIUM} is not installed (.ci/run installs it)` }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), "gerbang-playground-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(fileURLToPath(new URL("../../policies/2026-12-01", import.meta.url)), join(root, "2026-12-01"), { recursive: true });
  writeStricterVersion(root, "2026-12-01", "2026-12-02", { updateTest: true });
  // Two instances on one PostgreSQL and Redis, under load the whole time: the page activates for the fleet.
  const env = await startGatewayEnv({ postgres: true, instances: 2, config: { policy: { dir: root, version: "2026-12-01" }, redis: { url: testRedisUrl() } } });
  t.teardown(() => env.close());
  const answers = new Map<string, number>();
  let loading = true;
  const load = Promise.all(
    env.urls.map(async (url) => {
      while (loading) {
        const status = await fetch(`${url}/api/products`).then(async (r) => (await r.arrayBuffer(), String(r.status)), () => "error");
        answers.set(status, (answers.get(status) ?? 0) + 1);
      }
    }),
  );
  t.teardown(async () => {
    loading = false;
    await load;
  });
  const served = async (): Promise<string[]> =>
    Promise.all(env.urls.map(async (url) => ((await (await fetch(`${url}/readyz`)).json()) as { details: { policy: { version: string } } }).details.policy.version));
  const reached = async (version: string): Promise<number> => {
    const started = Date.now();
    while (Date.now() - started < 5000) {
      if ((await served()).every((v) => v === version)) return Date.now() - started;
      await new Promise((r) => setTimeout(r, 25));
    }
    return Infinity;
  };

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
  t.teardown(() => browser.close());
  const signedIn = async (email: string, password: string): Promise<BrowserContext> => {
    const context = await browser.newContext({ baseURL: env.url });
    const response = await context.request.post("/api/auth/sign-in/email", { data: { email, password }, headers: { origin: env.url } });
    t.equal(response.status(), 200, `${email} signed in`);
    return context;
  };

  const admin = await signedIn("admin@demo.gerbang.dev", "demo-admin-password");
  const page = await admin.newPage();
  // Functions, not strings: the page's CSP forbids evaluating strings (Playwright's string predicates use eval).
  const textIn = async (selector: string, text: string): Promise<void> =>
    void (await page.waitForFunction(([s, x]) => ((globalThis as unknown as PageGlobals).document.querySelector(s)?.textContent ?? "").includes(x), [selector, text] as const));
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  const response = await page.goto("/admin/playground");
  t.equal(response?.status(), 200);
  const headers = response?.headers() ?? {};
  t.match(headers["content-security-policy"], /default-src 'none'; script-src 'self';.*frame-ancestors 'none'/);
  t.notMatch(headers["content-security-policy"], /unsafe-inline|unsafe-eval/);
  t.equal(headers["x-frame-options"], "DENY");
  await page.waitForSelector("body[data-ready=true]");
  t.match(await page.textContent("#status"), /Active: 2026-12-01 \(digest [0-9a-f]{12}\).*2 of 2 instances serve it/);

  await t.test("explain a denied request and see the rule that would have allowed it", async (t) => {
    await page.selectOption("#explain-version", "2026-12-01");
    await page.fill("#explain-roles", "sales");
    await page.fill("#explain-attributes", '{"region":"us"}');
    await page.selectOption("#explain-method", "GET");
    await page.fill("#explain-path", "/api/orders/ord_1");
    await page.fill("#explain-resource", '{"id":"ord_1","region":"eu"}');
    await page.click("#explain-submit");
    await page.waitForSelector("#explain-result p.deny");
    const text = (await page.textContent("#explain-result")) ?? "";
    t.match(text, /Denied: 403 CONDITIONS_NOT_MET/);
    t.match(text, /sales\.orders\.read-region \[sales\] allow: conditions not met/);
    t.match(text, /FAIL region \$eq "\$\{principal\.region\}" = "us"; resource has "eu"/);
  });

  await t.test("markup in a request is shown as text and never runs", async (t) => {
    // A raw `<` in a path is refused by the gateway before any policy: the page shows that refusal as text.
    await page.fill("#explain-path", '/api/orders/<img src=x onerror="window.__pwned=1">');
    await page.click("#explain-submit");
    await textIn("#explain-result", "BAD_REQUEST_TARGET");
    // Encoded as a client sends it, and markup in the attribute values: all shown as the characters they are.
    const encoded = "/api/orders/%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D1%22%3E";
    await page.fill("#explain-path", encoded);
    await page.fill("#explain-attributes", JSON.stringify({ region: "<script>window.__pwned=2</script>" }));
    await page.fill("#explain-resource", JSON.stringify({ region: "</li><b>bold</b><img src=x onerror=\"window.__pwned=3\">" }));
    await page.click("#explain-submit");
    await textIn("#explain-result", "onerror=");
    const text = (await page.textContent("#explain-result")) ?? "";
    t.ok(text.includes(`GET ${encoded}`), "the path appears as sent");
    t.ok(text.includes("<script>window.__pwned=2</script>") && text.includes("</li><b>bold</b><img src=x onerror="), "attribute values appear as typed");
    t.equal(await page.locator("#explain-result img, #explain-result script, #explain-result b").count(), 0, "no element was made from them");
    t.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).__pwned), undefined, "nothing ran");
  });

  await t.test("diff two versions", async (t) => {
    await page.selectOption("#diff-from", "2026-12-01");
    await page.selectOption("#diff-to", "2026-12-02");
    await page.click("#diff-submit");
    await page.waitForSelector("#diff-result ul.cells");
    const text = (await page.textContent("#diff-result")) ?? "";
    t.match(text, /2026-12-01 → 2026-12-02: 2 of 100 role × endpoint × method cells changed/);
    t.match(text, /allow→deny anonymous GET products\.list/);
    t.match(text, /removed anonymous\.products\.read \[anonymous\]/);
  });

  await t.test("activate and roll back from the page", async (t) => {
    await page.selectOption("#activate-version", "2026-12-02");
    await page.fill("#activate-reason", "from the playground");
    await page.click("#activate-submit");
    await textIn("#activate-result", "Activated");
    t.match(await page.textContent("#activate-result"), /Activated 2026-12-02 \(was 2026-12-01\)/);
    t.ok((await reached("2026-12-02")) <= 1000, "both instances serve 2026-12-02 within a second");
    t.equal((await fetch(`${env.urls[1]}/api/products`)).status, 401, "anonymous reads are gone on the other instance too");
    await page.click("#rollback-submit");
    await textIn("#activate-result", "was 2026-12-02");
    t.match(await page.textContent("#activate-result"), /Activated 2026-12-01 \(was 2026-12-02\)/);
    t.ok((await reached("2026-12-01")) <= 1000, "both back on 2026-12-01 within a second");
    await textIn("#status", "Active: 2026-12-01");
    t.match(await page.textContent("#status"), /Active: 2026-12-01 .* by admin@demo\.gerbang\.dev \(admin API\)/);
  });

  t.same(violations, [], "the page needs nothing its CSP forbids");
  loading = false;
  await load;
  t.same([...answers.keys()].filter((s) => s !== "200" && s !== "401"), [], `under load on both instances, no request failed: ${JSON.stringify([...answers])}`);

  await t.test("a non-admin gets 403, the page and its script alike", async (t) => {
    const user = await signedIn("user@demo.gerbang.dev", "demo-user-password");
    const other = await user.newPage();
    t.equal((await other.goto("/admin/playground"))?.status(), 403);
    t.equal((await other.goto("/admin/playground/playground.js"))?.status(), 403);
    const anonymous = await browser.newContext({ baseURL: env.url });
    t.equal((await (await anonymous.newPage()).goto("/admin/playground"))?.status(), 401);
  });
});
