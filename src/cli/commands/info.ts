import { Command } from 'commander';
import type { CliIo } from '../cli-io.js';
import { parseFormat, renderData } from '../format/output.js';
import { UsageError } from '../exit-codes.js';

export function versionCommand(io: CliIo): Command {
  return new Command('version')
    .description('runtime name and versions (CRI Version)')
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .action(async (opts: { output: string }, cmd: Command) => {
      const v = await io.session(cmd).call('Version', {});
      if (opts.output === 'text') {
        io.out(`Version:  ${v.version}\nRuntimeName:  ${v.runtimeName}\nRuntimeVersion:  ${v.runtimeVersion}\nRuntimeApiVersion:  ${v.runtimeApiVersion}\n`);
      } else io.out(await renderData(v, parseFormat(opts.output, ['json', 'yaml']) as 'json' | 'yaml'));
    });
}

export function infoCommand(io: CliIo): Command {
  return new Command('info')
    .description('runtime status, conditions and config (CRI Status, verbose)')
    .option('-o, --output <format>', 'json or yaml', 'json')
    .action(async (opts: { output: string }, cmd: Command) => {
      const format = parseFormat(opts.output, ['json', 'yaml']) as 'json' | 'yaml';
      const s = await io.session(cmd).call('Status', { verbose: true });
      const info: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.info)) {
        try {
          info[k] = JSON.parse(v);
        } catch {
          info[k] = v;
        }
      }
      io.out(await renderData({ status: s.status, runtimeHandlers: s.runtimeHandlers, features: s.features, ...info }, format));
    });
}

export function configCommand(io: CliIo): Command {
  return new Command('config')
    .description("cricketd's configuration")
    .option('--defaults', 'print the full default cricketd configuration with comments')
    .action(async (opts: { defaults?: boolean }) => {
      if (!opts.defaults) throw new UsageError('config: only --defaults is supported');
      // The schema (zod) is loaded only here.
      const { renderDefaults } = await import('../../config/defaults-doc.js');
      io.out(renderDefaults());
    });
}
