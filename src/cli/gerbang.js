#!/usr/bin/env node
// The `gerbang` command. Node 22.18+/24 run the TypeScript sources natively (type stripping: the
// sources use erasable syntax only); older runtimes go through tsx's loader. Either way no build
// step stands between a checkout and a running gateway.
if (process.features.typescript === undefined) {
  const { register } = await import("tsx/esm/api");
  register();
}
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
