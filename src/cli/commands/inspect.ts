import { Command } from 'commander';
import { ContainerStatus, Image, PodSandboxStatus } from '../../gen/runtime/v1/api.js';
import type { CliIo } from '../cli-io.js';
import { parseFormat, renderData } from '../format/output.js';
import { resolveContainer, resolveImage, resolvePod } from '../resolve.js';

/** A verbose status's info map holds JSON strings: shown parsed, as crictl does. */
function parsedInfo(info: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info)) {
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

function inspectOne(io: CliIo, name: string, what: string, get: (cmd: Command, ref: string) => Promise<unknown>): Command {
  return new Command(name)
    .description(`show the full status of ${what}`)
    .argument('<refs...>', 'names or ids (prefixes too)')
    .option('-o, --output <format>', 'json or yaml', 'json')
    .action(async (refs: string[], opts: { output?: string }, cmd: Command) => {
      const format = parseFormat(opts.output, ['json', 'yaml']) as 'json' | 'yaml';
      const all: unknown[] = [];
      for (const r of refs) all.push(await get(cmd, r));
      io.out(await renderData(all.length === 1 ? all[0] : all, format));
    });
}

export function inspectCommands(io: CliIo): Command[] {
  return [
    inspectOne(io, 'inspect', 'containers', async (cmd, ref) => {
      const s = io.session(cmd);
      const c = await resolveContainer(s, ref);
      const r = await s.call('ContainerStatus', { containerId: c.id, verbose: true });
      return { status: r.status ? ContainerStatus.toJSON(r.status) : undefined, info: parsedInfo(r.info) };
    }),
    inspectOne(io, 'inspectp', 'pods', async (cmd, ref) => {
      const s = io.session(cmd);
      const p = await resolvePod(s, ref);
      const r = await s.call('PodSandboxStatus', { podSandboxId: p.id, verbose: true });
      return { status: r.status ? PodSandboxStatus.toJSON(r.status) : undefined, info: parsedInfo(r.info) };
    }),
    inspectOne(io, 'inspecti', 'images', async (cmd, ref) => {
      const s = io.session(cmd);
      const img = await resolveImage(s, ref);
      const r = await s.call('ImageStatus', { image: { image: img.id }, verbose: true });
      return { status: r.image ? Image.toJSON(r.image) : undefined, info: parsedInfo(r.info) };
    }),
  ];
}
