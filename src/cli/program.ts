import { Command } from 'commander';
import type { CliIo } from './cli-io.js';
import { completionCommand } from './commands/completion.js';
import { attachCommand, execCommand } from './commands/exec.js';
import { imagesCommand, pruneCommand, rmiCommand } from './commands/images.js';
import { configCommand, infoCommand, versionCommand } from './commands/info.js';
import { inspectCommands } from './commands/inspect.js';
import { rmCommand, rmpCommand, stopCommand, stoppCommand } from './commands/lifecycle.js';
import { logsCommand } from './commands/logs.js';
import { podsCommand } from './commands/pods.js';
import { portForwardCommand } from './commands/port-forward.js';
import { psCommand } from './commands/ps.js';
import { pullCommand } from './commands/pull.js';
import { runCommand } from './commands/run.js';
import { getCommand, playCommand } from './commands/play.js';
import { statsCommand, topCommand } from './commands/stats.js';

/** The whole command tree; main.ts runs it, completion reads it. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('cricket')
    .description("Cricket's CLI: drive a CRI runtime by hand (crictl's verbs and flags, docker's habits)")
    .option('-r, --runtime-endpoint <endpoint>', 'the CRI socket (default: $CONTAINER_RUNTIME_ENDPOINT or unix:///run/cricket/cricket.sock)')
    .option('--endpoint <endpoint>', 'the same as --runtime-endpoint')
    .option('-t, --timeout <seconds>', 'deadline of each call (pulls and streams have none)', '10')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .addHelpText(
      'after',
      '\nExit codes: 0 done; 1 the runtime refused or failed; 2 bad usage or an unknown/ambiguous name;\nexec, attach and run end with the code of the process they ran.',
    );
  const commands = [
    versionCommand(io),
    infoCommand(io),
    configCommand(io),
    podsCommand(io),
    psCommand(io),
    imagesCommand(io),
    pullCommand(io),
    rmiCommand(io),
    pruneCommand(io),
    ...inspectCommands(io),
    logsCommand(io),
    execCommand(io),
    attachCommand(io),
    portForwardCommand(io),
    statsCommand(io),
    topCommand(io),
    stopCommand(io),
    rmCommand(io),
    stoppCommand(io),
    rmpCommand(io),
    runCommand(io),
    playCommand(io),
    getCommand(io),
    completionCommand(io, () => program),
  ];
  for (const c of commands) {
    // Subcommands inherit the output and error handling of the program.
    c.configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) }).showSuggestionAfterError();
    program.addCommand(c);
  }
  return program;
}
