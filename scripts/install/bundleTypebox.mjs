// Runs at install (package.json postinstall, after prisma generate). typebox ships as ~680 small ES
// modules, and resolving and linking them costs every process about 250 ms before its first line runs:
// a quarter of a CLI command's time. One bundle per entry point we use (with the shared code in a
// chunk, so module state such as typebox's Settings exists once) loads in about 30 ms. Sources import
// `#typebox…` (package.json "imports"); the declarations beside each bundle re-export typebox's own
// types, so type checking sees exactly the published package.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const outdir = join(root, "src", "generated", "typebox");
const entries = { index: "typebox", value: "typebox/value", system: "typebox/system" };

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
buildSync({
  absWorkingDir: root,
  entryPoints: entries,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node22",
  outdir,
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
});
for (const [name, specifier] of Object.entries(entries)) {
  writeFileSync(join(outdir, `${name}.d.mts`), `export * from "${specifier}";\nexport { default } from "${specifier}";\n`);
}
