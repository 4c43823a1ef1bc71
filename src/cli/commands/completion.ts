import { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { UsageError } from '../exit-codes.js';

/**
 * A bash completion script made from the command tree itself (so it never goes
 * stale): commands, then each command's flags; ids and names of pods, containers
 * and images are completed by asking the runtime (`cricket pods -q` etc.).
 */
export function bashCompletion(program: Command): string {
  const cmds = program.commands.filter((c) => c.name() !== 'help');
  const cases = cmds
    .map((c) => {
      const flags = c.options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
      const args = c.registeredArguments.map((a) => a.name()).join(' ');
      const kind = /container/.test(args) ? 'containers' : /pod/.test(args) ? 'pods' : /image/.test(args) ? 'images' : '';
      const names = { containers: "$(cricket ps -a -q 2>/dev/null) $(cricket ps -a -o json 2>/dev/null | sed -n 's/.*\"name\": \"\\(.*\\)\".*/\\1/p')", pods: "$(cricket pods -q 2>/dev/null)", images: "$(cricket images -q 2>/dev/null)" } as const;
      const words = kind === '' ? '' : ` ${names[kind]}`;
      return `    ${[c.name(), ...c.aliases()].join('|')}) words="${flags.join(' ')}${words}" ;;`;
    })
    .join('\n');
  const globals = program.options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined)).join(' ');
  return `# bash completion for cricket: source it, or put it in /etc/bash_completion.d/cricket
_cricket() {
  local cur cmd words i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) cmd="\${COMP_WORDS[i]}"; break ;; esac
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "${cmds.map((c) => c.name()).join(' ')} ${globals}" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _cricket cricket
`;
}

export function completionCommand(io: CliIo, program: () => Command): Command {
  return new Command('completion')
    .description('print a shell completion script: source <(cricket completion bash)')
    .argument('[shell]', 'bash', 'bash')
    .action((shell: string) => {
      if (shell !== 'bash') throw new UsageError(`completion: only bash is supported, not "${shell}"`);
      io.out(bashCompletion(program()));
    });
}
