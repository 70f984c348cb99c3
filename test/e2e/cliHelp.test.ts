// The CLI describes itself from one definition: help lists every command and flag, mistakes are
// one line with exit 2, and the completion script knows the same commands.
import t from "tap";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { GERBANG_BIN, runGerbang } from "../helpers/processes.ts";

t.test("help lists every command with all its flags, --json and --config included", async (t) => {
  const help = await runGerbang(["help"]);
  t.equal(help.code, 0);
  for (const line of [
    "gerbang serve [--config <file>] [--exit-with-parent] [--workers <n>]",
    "gerbang users create --email <email> --password <password> --role <roles> [--name <name>] [--attr <key=value>] [--json] [--config <file>]",
    "gerbang users list [--search <text>] [--role <role>] [--banned] [--limit <n>] [--offset <n>] [--json] [--config <file>]",
    "gerbang users set-role <email> <roles> [--json] [--config <file>]",
    "gerbang users set-attr <email> <key=value> [--json] [--config <file>]",
    "gerbang users ban <email> [--reason <text>] [--expires-in <duration>] [--json] [--config <file>]",
    "gerbang users unban <email> [--json] [--config <file>]",
    "gerbang users revoke-sessions <email> [--keys] [--json] [--config <file>]",
    "gerbang users delete <email> [--grace-days <n>] [--json] [--config <file>]",
    "gerbang users restore <email> [--json] [--config <file>]",
    "gerbang users purge [--email <email>] [--now] [--json] [--config <file>]",
    "gerbang users export <email> [--config <file>]",
    "gerbang users show <email> [--json] [--config <file>]",
    "gerbang keys create --owner <email> --name <name> --tier <tier> [--scopes <a,b>] [--expires-in <duration>] [--json] [--config <file>]",
    "gerbang keys list [--owner <email>] [--json] [--config <file>]",
    "gerbang keys revoke <id> [--json] [--config <file>]",
    "gerbang keys rotate <id> [--grace <duration>] [--json] [--config <file>]",
    "gerbang outbox list [--to <recipient>] [--limit <n>] [--json] [--config <file>]",
    "gerbang policy validate [target] [--json] [--config <file>]",
    "gerbang policy test [target] [--json] [--config <file>]",
    "gerbang policy new <version> [--from <version>] [--config <file>]",
    "gerbang policy publish <draft> [--config <file>]",
    "gerbang policy reload [--json] [--config <file>]",
  ]) {
    t.ok(help.stdout.includes(line), line);
  }
  const keys = await runGerbang(["keys", "create", "--help"]);
  t.match(keys.stdout, /--expires-in <duration>\s+lifetime such as 90d/);
  const none = await runGerbang([]);
  t.equal(none.code, 2, "no command: the help, as a usage error");
  t.match(none.stdout, /Every command and its flags/);
});

t.test("where type stripping is off (Node 22 before 22.18), the sources run through tsx", async (t) => {
  const run = spawnSync(process.execPath, ["--no-experimental-strip-types", GERBANG_BIN, "help"], { encoding: "utf8" });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /Every command and its flags/);
});

t.test("run as a program (the bin, npm run gerbang), the CLI starts with --liftoff-only", async (t) => {
  // The #! line passes a flag to node through env -S: an env without -S, or a node that rejected the
  // flag ("bad option", exit 9), fails the first assertion.
  const run = spawnSync(GERBANG_BIN, ["help"], { encoding: "utf8", env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` } });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /Every command and its flags/);
  const shebang = readFileSync(GERBANG_BIN, "utf8").split("\n")[0] ?? "";
  t.equal(shebang, "#!/usr/bin/env -S node --liftoff-only");
  const script = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> }).scripts;
  t.equal(script.gerbang, "exec node --liftoff-only src/cli/gerbang.js");
  t.notMatch(script.start ?? "", /liftoff/, "npm start serves with optimised WebAssembly");
});

t.test("a mistake is one line (with a suggestion) and exit 2, never the whole usage", async (t) => {
  const typo = await runGerbang(["keys", "lst"]);
  t.equal(typo.code, 2);
  t.match(typo.stderr, /unknown command 'lst'/);
  t.match(typo.stderr, /Did you mean list\?/);
  t.notMatch(typo.stderr, /Every command/);
  const flag = await runGerbang(["users", "list", "--jsn"]);
  t.equal(flag.code, 2);
  t.match(flag.stderr, /unknown option '--jsn'/);
  t.match(flag.stderr, /Did you mean --json\?/);
  const missing = await runGerbang(["keys", "create", "--owner", "a@b.c", "--tier", "partner-basic"]);
  t.equal(missing.code, 2);
  t.equal(missing.stderr.trim().split("\n").length, 1);
  t.match(missing.stderr, /required option '--name <name>' not specified/);
  const duration = await runGerbang(["keys", "rotate", "k1", "--grace", "soon"]);
  t.equal(duration.code, 2);
  t.equal(duration.stderr, "gerbang: --grace takes a duration such as 90s, 15m, 24h or 30d, got soon\n");
});

t.test("the bash completion script completes commands and flags from the same definition", async (t) => {
  const script = await runGerbang(["completion"]);
  t.equal(script.code, 0);
  const complete = (line: string): string[] => {
    const words = line.split(" ");
    const run = spawnSync("bash", ["-c", `${script.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _gerbang; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: "utf8" });
    return run.stdout.split("\n").filter(Boolean);
  };
  t.same(complete("gerbang k"), ["keys"]);
  t.same(complete("gerbang keys r").sort(), ["revoke", "rotate"]);
  t.ok(complete("gerbang users create --").includes("--password"));
});
