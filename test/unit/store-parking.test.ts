import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Parking } from '../../src/store/parking.js';

// The parking of a create finished after its caller's deadline, in both shapes the
// areas use: a finished pod (a value, kept until collected or removed) and a create
// still running (a promise, with a TTL and a discard, outliving its record).

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('a parked value is handed over once, then the key is empty', async () => {
  const p = new Parking<string>();
  assert.equal(p.collect('k'), undefined);
  p.park('k', 'id-1');
  assert.equal(p.size, 1);
  assert.equal(await p.collect('k'), 'id-1');
  assert.equal(p.collect('k'), undefined);
  assert.equal(p.size, 0);
});

test('a retry collecting work still running gets its result when it settles', async () => {
  const p = new Parking<string>();
  const d = deferred<string>();
  p.park('k', d.promise);
  const got = p.collect('k');
  assert.ok(got);
  d.resolve('id-2');
  assert.equal(await got, 'id-2');
});

test('work that fails unparks itself: a failed create has nothing to hand out', async () => {
  const p = new Parking<string>();
  const d = deferred<string>();
  const discarded: string[] = [];
  p.park('k', d.promise, { ttlMs: 20, discard: async (id) => void discarded.push(id) });
  d.reject(new Error('runc create failed'));
  await tick();
  assert.equal(p.collect('k'), undefined);
  await sleep(40);
  assert.deepEqual(discarded, [], 'nothing to discard, and the TTL timer was cleared');
});

test('uncollected past its TTL: the entry is given up and discarded once its work settles', async () => {
  const p = new Parking<string>();
  const d = deferred<string>();
  const discarded: string[] = [];
  p.park('k', d.promise, { ttlMs: 20, discard: async (id) => void discarded.push(id) });
  await sleep(40);
  assert.equal(p.collect('k'), undefined, 'no longer handed out');
  assert.deepEqual(discarded, [], 'discard waits for the work');
  d.resolve('id-3');
  await tick();
  assert.deepEqual(discarded, ['id-3']);
});

test('a discard that fails is not an unhandled rejection', async () => {
  const p = new Parking<string>();
  p.park('k', 'id-4', { ttlMs: 5, discard: async () => Promise.reject(new Error('cannot remove')) });
  await sleep(20);
  assert.equal(p.size, 0);
});

test('collected in time: the TTL no longer runs', async () => {
  const p = new Parking<string>();
  const discarded: string[] = [];
  p.park('k', 'id-5', { ttlMs: 20, discard: async (id) => void discarded.push(id) });
  assert.equal(await p.collect('k'), 'id-5');
  await sleep(40);
  assert.deepEqual(discarded, []);
});

test('drop: an entry goes with its record, unless it outlives it; other values and keys stay', async () => {
  const cases: { name: string; outlivesRecord: boolean; dropKey: string; dropValue: string; kept: boolean }[] = [
    { name: 'its record removed', outlivesRecord: false, dropKey: 'k', dropValue: 'id-6', kept: false },
    { name: 'its record removed, outlivesRecord', outlivesRecord: true, dropKey: 'k', dropValue: 'id-6', kept: true },
    { name: 'another record under the key', outlivesRecord: false, dropKey: 'k', dropValue: 'id-other', kept: true },
    { name: 'another key', outlivesRecord: false, dropKey: 'k2', dropValue: 'id-6', kept: true },
  ];
  for (const c of cases) {
    const p = new Parking<string>();
    p.park('k', Promise.resolve('id-6'), { outlivesRecord: c.outlivesRecord });
    await tick(); // the value is known once the work settled
    p.drop(c.dropKey, c.dropValue);
    assert.equal(p.collect('k') !== undefined, c.kept, c.name);
  }
});

test('parking again under a key replaces the entry; the old one is neither handed out nor discarded', async () => {
  const p = new Parking<string>();
  const discarded: string[] = [];
  p.park('k', 'old', { ttlMs: 10, discard: async (id) => void discarded.push(id) });
  p.park('k', 'new');
  await sleep(30);
  assert.equal(await p.collect('k'), 'new');
  assert.deepEqual(discarded, []);
});
