import { Command } from 'commander';
import { Container, containerStateToJSON } from '../../gen/runtime/v1/api.js';
import type { CliIo } from '../cli-io.js';
import { ago, shortId, stateName } from '../format/human.js';
import { parseFormat, renderData } from '../format/output.js';
import { renderTable } from '../format/table.js';
import { resolvePodIn } from '../resolve.js';
import { collectLabel, parseLast, matchesLabels, stateMatches } from './list-filters.js';

interface PsOptions {
  all?: boolean;
  name?: string;
  pod?: string;
  state?: string;
  label?: Record<string, string>;
  image?: string;
  quiet?: boolean;
  output?: string;
  trunc?: boolean;
  latest?: boolean;
  last?: number;
}

export function psCommand(io: CliIo): Command {
  return new Command('ps')
    .description('list containers (running ones; -a for all)')
    .option('-a, --all', 'all containers, not only running ones')
    .option('--name <name>', 'only containers whose name contains this')
    .option('-p, --pod <pod>', 'only containers of this pod (name or id)')
    .option('-s, --state <state>', 'only containers in this state: created, running, exited, unknown')
    .option('--label <key=value>', 'only containers with this label (repeatable)', collectLabel)
    .option('--image <image>', 'only containers whose image reference contains this')
    .option('-l, --latest', 'only the newest')
    .option('--last <n>', 'only the newest N', parseLast)
    .option('-q, --quiet', 'print ids only')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('--no-trunc', 'full ids')
    .action(async (opts: PsOptions, cmd: Command) => {
      const format = parseFormat(opts.output);
      const s = io.session(cmd);
      const [{ containers }, { items: pods }] = await Promise.all([s.call('ListContainers', {}), s.call('ListPodSandbox', {})]);
      const podId = opts.pod !== undefined ? resolvePodIn(pods, opts.pod).id : undefined;
      const podOf = new Map(pods.map((p) => [p.id, p]));
      const list = containers
        .filter(
          (c) =>
            (opts.all || opts.state !== undefined || c.state === 1) &&
            (opts.name === undefined || (c.metadata?.name ?? '').includes(opts.name)) &&
            (podId === undefined || c.podSandboxId === podId) &&
            (opts.image === undefined || (c.image?.image ?? '').includes(opts.image) || c.imageRef.includes(opts.image)) &&
            stateMatches(containerStateToJSON(c.state), opts.state) &&
            matchesLabels(c.labels, opts.label),
        )
        .sort((a, b) => Number(b.createdAt - a.createdAt))
        .slice(0, opts.latest ? 1 : (opts.last ?? Infinity) || Infinity);
      if (opts.quiet) return io.out(list.map((c) => `${c.id}\n`).join(''));
      if (format !== 'table') return io.out(await renderData({ containers: list.map((c) => Container.toJSON(c)) }, format));
      const full = opts.trunc === false;
      io.out(
        renderTable(
          [
            { header: 'CONTAINER' },
            { header: 'IMAGE', shrink: true },
            { header: 'CREATED', drop: 3 },
            { header: 'STATE' },
            { header: 'NAME', shrink: true },
            { header: 'ATTEMPT', drop: 1 },
            { header: 'POD ID', drop: 2 },
            { header: 'POD', shrink: true },
          ],
          list.map((c) => [
            shortId(c.id, full),
            c.image?.userSpecifiedImage || c.image?.image || shortId(c.imageRef, full),
            ago(c.createdAt),
            stateName(containerStateToJSON(c.state)),
            c.metadata?.name ?? '',
            String(c.metadata?.attempt ?? 0),
            shortId(c.podSandboxId, full),
            podOf.get(c.podSandboxId)?.metadata?.name ?? '',
          ]),
          io.width(),
        ),
      );
    });
}
