import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { startDaemon, tempDir, removeDir } from '../test/helpers/daemon.js';
import { buildTar, busyboxEntries, pushImage, sha256, type BuiltLayer, type LayerEntry } from '../test/helpers/oci-image.js';
import { imagesConfigToml, startRegistry } from '../test/helpers/registry.js';

// PullImage of a ~100 MB, 6-layer image from the loopback registry: cold (nothing
// present: download, verify, unpack) and warm (already present: manifest only).

const LAYERS = 5;
const FILES_PER_LAYER = 50;
const FILE_BYTES = 500 * 1024;

async function layer(i: number): Promise<BuiltLayer> {
  const entries: LayerEntry[] = [{ path: `data${i}/`, type: 'directory' }];
  // Mostly random (incompressible), some text, like real binaries plus text files.
  for (let f = 0; f < FILES_PER_LAYER; f++) {
    const content = f % 4 !== 3 ? randomBytes(FILE_BYTES) : Buffer.from(`layer ${i} file ${f}\n`.repeat(FILE_BYTES / 20));
    entries.push({ path: `data${i}/f${f}`, content });
  }
  const raw = await buildTar(entries);
  const blob = gzipSync(raw, { level: 1 });
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(blob), diffId: sha256(raw), size: blob.length, blob };
}

async function main(): Promise<void> {
  const reg = await startRegistry();
  const dir = tempDir('cricket-bench-pull-');
  try {
    const base = await buildTar(busyboxEntries());
    const baseBlob = gzipSync(base);
    const layers: BuiltLayer[] = [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(baseBlob), diffId: sha256(base), size: baseBlob.length, blob: baseBlob },
    ];
    for (let i = 0; i < LAYERS; i++) layers.push(await layer(i));
    const img = await pushImage(reg.host, 'bench/big', 'v1', layers);
    const bytes = layers.reduce((n, l) => n + l.size, 0);
    const mb = bytes / 1e6;
    const rows: string[] = [];
    for (const round of [1, 2]) {
      const d = await startDaemon({ configToml: imagesConfigToml(dir, reg.host) });
      try {
        let t0 = process.hrtime.bigint();
        await d.client.call('PullImage', { image: { image: img.ref } }, { timeoutMs: 600_000 });
        const cold = Number(process.hrtime.bigint() - t0) / 1e9;
        t0 = process.hrtime.bigint();
        await d.client.call('PullImage', { image: { image: img.ref } });
        const warm = Number(process.hrtime.bigint() - t0) / 1e9;
        rows.push(
          `run ${round}: cold ${cold.toFixed(2)} s (${(mb / cold).toFixed(1)} MB/s), warm ${warm.toFixed(3)} s (${(mb / warm).toFixed(0)} MB/s)`,
        );
      } finally {
        await d.cleanup();
      }
    }
    console.log(`image: ${layers.length} layers, ${mb.toFixed(1)} MB compressed, loopback registry`);
    for (const r of rows) console.log(r);
  } finally {
    await reg.stop();
    removeDir(dir);
  }
}

await main();
