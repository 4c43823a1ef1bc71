import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CricketClient } from '../../src/client/cricket-client.js';
import { CRICKET } from '../helpers/daemon.js';
import { pushBusyboxImage, type PushedImage } from '../helpers/oci-image.js';
import { startRegistryProxy, type RegistryProxy } from '../helpers/registry.js';
import { setUpCliEnv } from './cli-env.js';

// Pull progress, end to end: cricket.v1 PullImageProgress shows a layer half way when
// its download stalls there (a registry proxy sends half the blob and then nothing),
// and `cricket pull` draws it live on a terminal and as plain lines in a pipe.

test('pull progress', { timeout: 180_000 }, async (t) => {
  let proxy: RegistryProxy | undefined;
  let big: PushedImage | undefined;
  const bigLayer = { entries: [{ path: 'big.bin', content: randomBytes(1 << 20) }], compression: 'none' as const };
  const env = await setUpCliEnv({
    beforeDaemon: async (regHost) => {
      big = await pushBusyboxImage(regHost, 'cli/big', 'v1', { layers: [bigLayer] });
      proxy = await startRegistryProxy(regHost, { stallBlob: big.layers[1]!.digest });
    },
    registriesExtra: () => `[[registry]]\nlocation = "${proxy!.host}"\ninsecure = true\n`,
  });
  t.after(async () => {
    await env.cleanup();
    await proxy?.stop();
  });
  const stalledRef = `${proxy!.host}/cli/big:v1`;
  const stalled = big!.layers[1]!;

  await t.test('PullImageProgress shows the stalled layer half way, the others done', async () => {
    const client = new CricketClient(`unix://${env.d.socket}`);
    try {
      let seen;
      for await (const p of client.pullImageProgress({ image: { image: stalledRef } })) {
        const l = p.layers.find((x) => x.digest === stalled.digest);
        if (l && l.state === 'downloading' && l.done * 2n >= l.size - 1n) {
          seen = p;
          break; // cancels the call: the daemon drops the pull (no other caller waits for it)
        }
      }
      assert.ok(seen, 'a picture with the layer half way');
      assert.equal(seen.phase, 'layers');
      assert.equal(seen.layers.length, 2);
      assert.equal(seen.totalBytes, BigInt(big!.layers.reduce((n, l) => n + l.size, 0)));
      const base = seen.layers.find((x) => x.digest !== stalled.digest)!;
      assert.ok(['done', 'unpacking'].includes(base.state), base.state);
      assert.equal(seen.doneBytes, base.done + seen.layers.find((x) => x.digest === stalled.digest)!.done);
    } finally {
      client.close();
    }
  });

  await t.test('on a terminal: a live line per layer and a total, redrawn in place', async () => {
    const line = `${CRICKET} -r unix://${env.d.socket} pull ${stalledRef}`;
    const child = spawn('script', ['-qefc', `stty cols 120; exec ${line}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        // A second picture is drawn over the first: wait for the cursor to go back up.
        if (new RegExp(`${stalled.digest.slice(7, 19)}\\s+downloading\\s+\\S+ / \\S+\\s+(49|50)%`).test(out) && /\x1b\[\d+A/.test(out)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`pull ended (${code}) before showing progress: ${out}`)));
    });
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    assert.match(out, /\x1b\[2K/, 'lines are cleared and redrawn');
    assert.match(out, /\x1b\[\d+A/, 'the cursor goes back up to redraw');
    assert.match(out, /total\s+\S+ \/ \S+ \d+%\s+\S+\/s\s+ETA/);
  });

  await t.test('in a pipe: plain lines, and the result on stdout', async () => {
    const r = await env.cli(['pull', env.image.ref]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Image is up to date for ${env.image.configDigest}\n`);
    assert.match(r.stderr, new RegExp(`^${env.image.ref}: .*done\\n$`, 'm'));
    const tty = await env.inTerminal(['pull', env.image.ref]);
    assert.equal(tty.code, 0, tty.stdout);
    assert.match(tty.stdout, /exists|done/);
    assert.match(tty.stdout, /total\s+\S+ \/ \S+ 100%/);
  });
});
