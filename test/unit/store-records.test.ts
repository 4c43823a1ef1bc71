import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { alreadyExists, CricketError } from '../../src/core/errors.js';
import { JsonRecordDir } from '../../src/store/json-record.js';
import { RecordStore, type RecordKind } from '../../src/store/record-store.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

// The generic store over a toy kind: a meta {id, name}, a status {n}, and a record
// class whose build fails for a name of "undecodable" (as a bad config would).

const Meta = z.object({ v: z.literal(1), id: z.string(), name: z.string() });
const StatusV2 = z.object({ v: z.literal(2), n: z.number() });
// A status schema that migrates: v1 counted in `count`.
const Status = z.union([StatusV2, z.object({ v: z.literal(1), count: z.number() }).transform((s) => ({ v: 2 as const, n: s.count }))]);
type M = z.output<typeof Meta>;
type S = z.output<typeof StatusV2>;

class Thing {
  readonly meta: M;
  status: S;
  constructor(meta: M, status: S) {
    if (meta.name === 'undecodable') throw new Error('cannot decode the config');
    this.meta = meta;
    this.status = status;
  }
}

function kind(withFallback: boolean): RecordKind<M, S, Thing> {
  return {
    noun: 'thing',
    metaSchema: Meta,
    statusSchema: Status,
    build: (m, s) => new Thing(m, s),
    nameKey: (m) => `name/${m.name}`,
    nameTaken: (key, holder) => alreadyExists(`${key} is held by ${holder}`),
    ...(withFallback ? { statusWhenMissing: () => ({ v: 2 as const, n: -1 }) } : {}),
  };
}

const hex = (c: string) => c.repeat(64);
const thing = (id: string, name: string, n = 0): Thing => new Thing({ v: 1, id, name }, { v: 2, n });

test('add, update and remove go through disk; a reload restores records and names', async (t) => {
  const dir = tempDir('cricket-records-');
  t.after(() => removeDir(dir));
  const s = new RecordStore(dir, kind(false));
  const a = thing(hex('a'), 'alpha', 1);
  s.reserveName('name/alpha', a.meta.id);
  await s.add(a);
  assert.equal(s.get(a.meta.id), a);
  a.status = { v: 2, n: 2 };
  await s.update(a);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'status', `${a.meta.id}.json`), 'utf8')), { v: 2, n: 2 });
  assert.equal(statSync(join(dir, 'meta', `${a.meta.id}.json`)).mode & 0o777, 0o600);

  const again = new RecordStore(dir, kind(false));
  const res = await again.load();
  assert.deepEqual(res.loaded.map((x) => [x.meta.name, x.status.n]), [['alpha', 2]]);
  assert.deepEqual([res.unreadable, res.halfWritten], [[], []]);
  assert.throws(() => again.reserveName('name/alpha', hex('b')), /name\/alpha is held by a{64}/, 'the loaded record holds its name');

  await again.remove(res.loaded[0]!);
  assert.equal(again.get(a.meta.id), undefined);
  assert.deepEqual([readdirSync(join(dir, 'meta')), readdirSync(join(dir, 'status'))], [[], []]);
  again.reserveName('name/alpha', hex('b'));
});

test('names: the holder may take its name again, anyone else gets the kind\'s error, only the holder releases', () => {
  const s = new RecordStore('/nonexistent/cricket-records', kind(false));
  s.reserveName('k', hex('a'));
  s.reserveName('k', hex('a'));
  assert.throws(() => s.reserveName('k', hex('b')), (e: unknown) => e instanceof CricketError && e.code === 'AlreadyExists' && e.message === `k is held by ${hex('a')}`);
  s.releaseName('k', hex('b'));
  assert.throws(() => s.reserveName('k', hex('b')));
  s.releaseName('k', hex('a'));
  s.reserveName('k', hex('b'));
});

test('ids resolve in full or by an unambiguous prefix', async (t) => {
  const dir = tempDir('cricket-records-');
  t.after(() => removeDir(dir));
  const s = new RecordStore(dir, kind(false));
  const ab = `ab${'0'.repeat(62)}`;
  const ac = `ac${'0'.repeat(62)}`;
  await s.add(thing(ab, 'x'));
  await s.add(thing(ac, 'y'));
  const cases: [input: string, expected: string | undefined | 'InvalidArgument'][] = [
    [ab, ab],
    ['ab', ab],
    ['ac0', ac],
    ['a', 'InvalidArgument'],
    ['ff', undefined],
    ['not-hex', undefined],
    ['', 'InvalidArgument'],
  ];
  for (const [input, expected] of cases) {
    if (expected === 'InvalidArgument') {
      assert.throws(() => s.resolve(input), (e: unknown) => e instanceof CricketError && e.code === 'InvalidArgument' && /thing/.test(e.message), input);
    } else assert.equal(s.resolve(input)?.meta.id, expected, input);
  }
  assert.deepEqual(s.list().map((x) => x.meta.name).sort(), ['x', 'y']);
});

// What a crash (or a person) can leave on disk, and what load makes of it: ids
// loaded, unreadable and half-written, without and with statusWhenMissing (whose
// status has n = -1).
type Outcome = [loaded: string[], unreadable: string[], halfWritten: string[]];
const A = hex('a');
const metaOf = (name = 'n') => JSON.stringify({ v: 1, id: A, name });
const statusOf = (n: number) => JSON.stringify({ v: 2, n });
const META = `meta/${A}.json`;
const STATUS = `status/${A}.json`;

const loadCases: { name: string; files: Record<string, string>; plain: Outcome; fallback: Outcome; n?: number; deleted?: string[] }[] = [
  { name: 'meta and status', files: { [META]: metaOf(), [STATUS]: statusOf(1) }, plain: [[A], [], []], fallback: [[A], [], []], n: 1 },
  { name: 'meta without status (cut between the writes)', files: { [META]: metaOf() }, plain: [[], [], [A]], fallback: [[A], [], []], n: -1 },
  { name: 'meta with a torn status', files: { [META]: metaOf(), [STATUS]: '{"v":2,' }, plain: [[], [A], [A]], fallback: [[A], [A], []], n: -1 },
  { name: 'unreadable meta', files: { [META]: '{', [STATUS]: statusOf(1) }, plain: [[], [A], []], fallback: [[], [A], []] },
  { name: 'meta of an unknown version', files: { [META]: JSON.stringify({ v: 9, id: A, name: 'n' }), [STATUS]: statusOf(1) }, plain: [[], [A], []], fallback: [[], [A], []] },
  { name: 'status alone (a removal cut short)', files: { [STATUS]: statusOf(1) }, plain: [[], [], []], fallback: [[], [], []], deleted: [STATUS] },
  { name: 'a record its kind cannot build', files: { [META]: metaOf('undecodable'), [STATUS]: statusOf(1) }, plain: [[], [A], []], fallback: [[], [A], []] },
  { name: 'the temp file of an interrupted write', files: { 'meta/.tmp-0123456789ab': metaOf() }, plain: [[], [], []], fallback: [[], [], []] },
];

test('load: every on-disk state, with and without statusWhenMissing', async (t) => {
  for (const c of loadCases) {
    for (const withFallback of [false, true]) {
      const what = `${c.name} (${withFallback ? 'with' : 'without'} statusWhenMissing)`;
      const dir = tempDir('cricket-records-');
      t.after(() => removeDir(dir));
      for (const [rel, content] of Object.entries(c.files)) {
        mkdirSync(join(dir, rel.split('/')[0]!), { recursive: true });
        writeFileSync(join(dir, rel), content);
      }
      const s = new RecordStore(dir, kind(withFallback));
      const r = await s.load();
      const got: Outcome = [r.loaded.map((x) => x.meta.id), r.unreadable.map((u) => u.id), r.halfWritten];
      assert.deepEqual(got, withFallback ? c.fallback : c.plain, what);
      assert.deepEqual(s.list().map((x) => x.meta.id), got[0], `${what}: only loaded records are in memory`);
      if (got[0].length > 0) assert.equal(s.get(A)?.status.n, c.n, `${what}: the status it was loaded with`);
      for (const u of r.unreadable) assert.ok(u.reason.length > 0, `${what}: the reason is given`);
      for (const rel of c.deleted ?? []) assert.equal(existsSync(join(dir, rel)), false, `${what}: ${rel} is deleted`);
      for (const rel of Object.keys(c.files)) {
        if (!(c.deleted ?? []).includes(rel) && !rel.includes('.tmp-')) assert.ok(existsSync(join(dir, rel)), `${what}: ${rel} is left as it is`);
      }
    }
  }
});

test('a status write that fails after the meta write leaves the resource invisible and half-written on disk', async (t) => {
  const dir = tempDir('cricket-records-');
  t.after(() => removeDir(dir));
  writeFileSync(join(dir, 'status'), 'not a directory'); // every status write now fails
  const s = new RecordStore(dir, kind(false));
  const a = thing(A, 'alpha');
  await assert.rejects(s.add(a));
  assert.equal(s.get(A), undefined, 'not visible: add failed');
  assert.ok(existsSync(join(dir, 'meta', `${A}.json`)), 'the meta was written first');
  rmSync(join(dir, 'status'));
  assert.deepEqual((await new RecordStore(dir, kind(false)).load()).halfWritten, [A]);
  // The create's rollback: records only.
  await s.removeRecords(A);
  assert.equal(existsSync(join(dir, 'meta', `${A}.json`)), false);
});

test('a schema that migrates loads old records as the current version; update writes the current version', async (t) => {
  const dir = tempDir('cricket-records-');
  t.after(() => removeDir(dir));
  mkdirSync(join(dir, 'meta'));
  mkdirSync(join(dir, 'status'));
  writeFileSync(join(dir, 'meta', `${A}.json`), metaOf(A));
  writeFileSync(join(dir, 'status', `${A}.json`), JSON.stringify({ v: 1, count: 7 }));
  const s = new RecordStore(dir, kind(false));
  const [a] = (await s.load()).loaded;
  assert.deepEqual(a?.status, { v: 2, n: 7 });
  await s.update(a!);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'status', `${A}.json`), 'utf8')), { v: 2, n: 7 });
});

test('atomic writes: a failed write leaves the old record and no temp file', async (t) => {
  const dir = tempDir('cricket-records-');
  t.after(() => removeDir(dir));
  const records = new JsonRecordDir(dir, Meta);
  await records.put('x', { v: 1, id: 'x', name: 'old' });
  // A directory where the next record goes makes the rename fail after the temp file is written.
  mkdirSync(join(dir, 'y.json'));
  writeFileSync(join(dir, 'y.json', 'keep'), '');
  await assert.rejects(records.put('y', { v: 1, id: 'y', name: 'new' }));
  await records.put('x', { v: 1, id: 'x', name: 'new' });
  assert.deepEqual(readdirSync(dir).sort(), ['x.json', 'y.json'], 'no .tmp- file left behind');
  assert.equal((await records.get('x'))?.name, 'new');
  await assert.rejects(records.put('../escape', { v: 1, id: 'e', name: 'e' }), /not a safe file name/);
});
