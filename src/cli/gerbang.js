#!/usr/bin/env node
// The `gerbang` command. TypeScript runs through tsx's loader, so no build step stands between a
// checkout and a running gateway.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
