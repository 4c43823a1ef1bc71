import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CricketError } from '../../src/core/errors.js';
import { Limiter, SharedWork } from '../../src/core/shared-work.js';

test('SharedWork: one run per key; it is aborted only when every waiter has given up', async () => {
  const work = new SharedWork<string>();
  let runs = 0;
  let seen: AbortSignal | undefined;
  let finish!: (v: string) => void;
  const fn = (signal: AbortSignal) => {
    runs++;
    seen = signal;
    return new Promise<string>((resolve, reject) => {
      finish = resolve;
      signal.addEventListener('abort', () => reject(new Error('aborted')));
    });
  };
  const a = new AbortController();
  const b = new AbortController();
  const pa = work.run('k', a.signal, fn);
  const pb = work.run('k', b.signal, fn);
  assert.equal(runs, 1);
  a.abort();
  await assert.rejects(pa, (e: CricketError) => e.code === 'Canceled');
  assert.equal(seen!.aborted, false, 'b still waits');
  finish('done');
  assert.equal(await pb, 'done');
  assert.equal(work.size, 0);

  const c = new AbortController();
  const pc = work.run('k2', c.signal, fn);
  c.abort();
  await assert.rejects(pc);
  assert.equal(seen!.aborted, true, 'the last waiter left: the work is aborted');
  assert.equal(runs, 2);
});

test('Limiter never runs more than its limit at once', async () => {
  const lim = new Limiter(2);
  let active = 0;
  let peak = 0;
  const task = async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setImmediate(r));
    active--;
  };
  await Promise.all(Array.from({ length: 10 }, () => lim.run(task)));
  assert.equal(peak, 2);
  assert.equal(active, 0);
});
