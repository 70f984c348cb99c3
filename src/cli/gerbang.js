#!/usr/bin/env -S node --liftoff-only
// The `gerbang` command. Node 22.18+/24 run the TypeScript sources natively (type stripping: the
// sources use erasable syntax only); where stripping is off (older 22.x: `false`, or
// --no-experimental-strip-types) the sources go through tsx's loader. Either way no build
// step stands between a checkout and a running gateway.
//
// --liftoff-only (in the line above and in `npm run gerbang`): V8 compiles WebAssembly with its baseline
// compiler only. A CLI command lives for a second at most; optimising the embedded database's 8.7 MB
// of WebAssembly and Prisma's query compiler costs it more than it could ever win back (a command that
// opens the embedded database itself: 1.15 s without, 0.66 s with, on the reference machine). `npm
// start` runs `serve` without it: a long-lived gateway wants the optimised code.
import module from "node:module";

// V8's on-disk code cache (Node 22.1+): later runs skip compiling the modules a command loads, which is
// most of a CLI call's time. It lives in the OS temp folder and is safe to delete.
module.enableCompileCache?.();
if (!process.features.typescript) {
  const { register } = await import("tsx/esm/api");
  register();
}
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
