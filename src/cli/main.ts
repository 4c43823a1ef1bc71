import { CommanderError } from 'commander';
import { status } from '@grpc/grpc-js';
import { CriCallError } from '../client/cri-client.js';
import { processIo } from './cli-io.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ExitWith, UsageError } from './exit-codes.js';
import { buildProgram } from './program.js';

// The cricket CLI: the only place (with daemon/) that reads argv and env.

async function main(argv: string[]): Promise<number> {
  const io = processIo();
  const program = buildProgram(io);
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT_USAGE;
    }
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0; everything else commander refuses is usage.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof ExitWith) return err.code;
    if (err instanceof UsageError) {
      io.err(`cricket: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof CriCallError && err.code === status.UNAVAILABLE && /connect|No connection/i.test(err.details)) {
      io.err(`cricket: ${err.message.split(':')[0]}: cannot reach the runtime at ${io.endpoint()} (is cricketd running? -r picks another socket): ${err.details.split('. Resolution')[0]}\n`);
      return EXIT_FAILURE;
    }
    io.err(`cricket: ${err instanceof CriCallError ? err.message : (err as Error).message}\n`);
    return EXIT_FAILURE;
  } finally {
    io.closeAll();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`cricket: ${(err as Error).message}\n`);
    process.exit(EXIT_FAILURE);
  },
);
