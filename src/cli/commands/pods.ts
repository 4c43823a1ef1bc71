import { Command } from 'commander';
import { PodSandbox, podSandboxStateToJSON } from '../../gen/runtime/v1/api.js';
import type { CliIo } from '../cli-io.js';
import { ago, shortId, stateName } from '../format/human.js';
import { parseFormat, renderData } from '../format/output.js';
import { renderTable } from '../format/table.js';
import { collectLabel, parseLast, matchesLabels, stateMatches } from './list-filters.js';

interface PodsOptions {
  name?: string;
  namespace?: string;
  state?: string;
  label?: Record<string, string>;
  id?: string;
  quiet?: boolean;
  output?: string;
  noTrunc?: boolean;
  latest?: boolean;
  last?: number;
}

export function podsCommand(io: CliIo): Command {
  return new Command('pods')
    .description('list pod sandboxes (crictl pods)')
    .option('--name <name>', 'only pods whose name contains this')
    .option('--namespace <ns>', 'only pods in this namespace')
    .option('-s, --state <state>', 'only pods in this state: ready or notready')
    .option('--label <key=value>', 'only pods with this label (repeatable)', collectLabel)
    .option('--id <prefix>', 'only pods whose id starts with this')
    .option('-l, --latest', 'only the newest')
    .option('--last <n>', 'only the newest N', parseLast)
    .option('-q, --quiet', 'print ids only')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('--no-trunc', 'full ids')
    .action(async (opts: PodsOptions & { trunc?: boolean }, cmd: Command) => {
      const format = parseFormat(opts.output);
      const { items } = await io.session(cmd).call('ListPodSandbox', {});
      const pods = items
        .filter(
          (p) =>
            (opts.name === undefined || (p.metadata?.name ?? '').includes(opts.name)) &&
            (opts.namespace === undefined || p.metadata?.namespace === opts.namespace) &&
            (opts.id === undefined || p.id.startsWith(opts.id)) &&
            stateMatches(podSandboxStateToJSON(p.state), opts.state) &&
            matchesLabels(p.labels, opts.label),
        )
        .sort((a, b) => Number(b.createdAt - a.createdAt))
        .slice(0, opts.latest ? 1 : (opts.last ?? Infinity) || Infinity);
      if (opts.quiet) return io.out(pods.map((p) => `${p.id}\n`).join(''));
      if (format !== 'table') return io.out(await renderData({ items: pods.map((p) => PodSandbox.toJSON(p)) }, format));
      const full = opts.trunc === false;
      io.out(
        renderTable(
          [
            { header: 'POD ID' },
            { header: 'CREATED', drop: 3 },
            { header: 'STATE' },
            { header: 'NAME', shrink: true },
            { header: 'NAMESPACE', shrink: true },
            { header: 'ATTEMPT', drop: 1 },
            { header: 'RUNTIME', shrink: true, drop: 2 },
          ],
          pods.map((p) => [
            shortId(p.id, full),
            ago(p.createdAt),
            stateName(podSandboxStateToJSON(p.state)),
            p.metadata?.name ?? '',
            p.metadata?.namespace ?? '',
            String(p.metadata?.attempt ?? 0),
            p.runtimeHandler || '(default)',
          ]),
          io.width(),
        ),
      );
    });
}
