import { Command } from 'commander';
import { Image } from '../../gen/runtime/v1/api.js';
import type { CliIo } from '../cli-io.js';
import { bytes, shortId } from '../format/human.js';
import { parseFormat, renderData } from '../format/output.js';
import { renderTable } from '../format/table.js';
import { resolveImage } from '../resolve.js';
import { ExitWith, UsageError } from '../exit-codes.js';
import type { Session } from '../session.js';

/** A repo tag "host/repo:tag" as crictl shows it: IMAGE and TAG apart. */
function splitTag(t: string): [string, string] {
  const i = t.lastIndexOf(':');
  return i > t.lastIndexOf('/') ? [t.slice(0, i), t.slice(i + 1)] : [t, '<none>'];
}

export function imagesCommand(io: CliIo): Command {
  return new Command('images')
    .alias('img')
    .description('list images')
    .argument('[filter]', 'only images whose reference contains this')
    .option('-q, --quiet', 'print ids only')
    .option('-o, --output <format>', 'table, json or yaml', 'table')
    .option('--digests', 'show the repo digests')
    .option('--no-trunc', 'full ids')
    .action(async (filter: string | undefined, opts: { quiet?: boolean; output?: string; digests?: boolean; trunc?: boolean }, cmd: Command) => {
      const format = parseFormat(opts.output);
      const { images } = await io.session(cmd).call('ListImages', {});
      const list = images.filter((i) => filter === undefined || [...i.repoTags, ...i.repoDigests, i.id].some((r) => r.includes(filter)));
      if (opts.quiet) return io.out(list.map((i) => `${i.id}\n`).join(''));
      if (format !== 'table') return io.out(await renderData({ images: list.map((i) => Image.toJSON(i)) }, format));
      const rows: string[][] = [];
      for (const i of list) {
        const tags = i.repoTags.length > 0 ? i.repoTags.map(splitTag) : [[(i.repoDigests[0] ?? '<none>').split('@')[0]!, '<none>'] as [string, string]];
        const digest = i.repoDigests[0]?.split('@')[1] ?? '';
        for (const [repo, tag] of tags) {
          rows.push([repo, tag, ...(opts.digests ? [shortId(digest, opts.trunc === false)] : []), shortId(i.id, opts.trunc === false), bytes(i.size)]);
        }
      }
      const cols = [{ header: 'IMAGE', shrink: true }, { header: 'TAG', shrink: true }, ...(opts.digests ? [{ header: 'DIGEST' }] : []), { header: 'IMAGE ID' }, { header: 'SIZE' }];
      io.out(renderTable(cols, rows, io.width()));
    });
}

export function rmiCommand(io: CliIo): Command {
  return new Command('rmi')
    .description('remove images')
    .argument('[images...]', 'references or ids (prefixes too)')
    .option('-a, --all', 'every image')
    .option('--prune', 'every image no container uses (as cricket prune)')
    .action(async (refs: string[], opts: { all?: boolean; prune?: boolean }, cmd: Command) => {
      const s = io.session(cmd);
      let ids: string[];
      if (opts.all) ids = (await s.call('ListImages', {})).images.map((i) => i.id);
      else if (opts.prune) ids = await unusedImages(s);
      else {
        if (refs.length === 0) throw new UsageError('rmi needs an image (or -a, --prune)');
        ids = [];
        for (const r of refs) ids.push((await resolveImage(s, r)).id);
      }
      await removeImages(io, s, ids);
    });
}

export function pruneCommand(io: CliIo): Command {
  return new Command('prune')
    .description('remove every image no container uses')
    .action(async (_opts: unknown, cmd: Command) => {
      const s = io.session(cmd);
      await removeImages(io, s, await unusedImages(s));
    });
}

async function unusedImages(s: Session): Promise<string[]> {
  const [{ images }, { containers }] = await Promise.all([s.call('ListImages', {}), s.call('ListContainers', {})]);
  const used = new Set(containers.map((c) => c.imageRef));
  return images.filter((i) => !used.has(i.id)).map((i) => i.id);
}

/** Removes each, reporting each; one failure does not stop the rest but fails the command. */
async function removeImages(io: CliIo, s: Session, ids: string[]): Promise<void> {
  let failed = false;
  for (const id of ids) {
    try {
      await s.call('RemoveImage', { image: { image: id } });
      io.out(`Deleted: ${id}\n`);
    } catch (err) {
      io.err(`cricket: ${(err as Error).message}\n`);
      failed = true;
    }
  }
  if (failed) throw new ExitWith(1);
}
