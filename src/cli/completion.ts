import type { Command } from "commander";

/** Bash completion generated from the program definition, so it never lags behind the commands. */
export function bashCompletion(program: Command): string {
  const cases: string[] = [];
  const walk = (command: Command, path: string[]): void => {
    const subs = command.commands.map((c) => c.name());
    const flags = command.options.map((o) => o.long).filter((f): f is string => f !== undefined);
    cases.push(`    "${path.join(" ")}") words="${[...subs, ...flags].join(" ")}" ;;`);
    for (const sub of command.commands) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  return `# gerbang bash completion: source <(gerbang completion)
_gerbang() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" words="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) path="\${path:+$path }\${COMP_WORDS[i]}" ;; esac
  done
  case "$path" in
${cases.join("\n")}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _gerbang gerbang
`;
}
