import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { JsonRecordDir } from '../../src/store/json-record.js';

test('loadAll removes the temp files of writes a crash cut short, and keeps the records', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cricket-records-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const records = new JsonRecordDir(join(dir, 'r'), z.object({ v: z.literal(1), n: z.number() }));
  await records.put('a', { v: 1, n: 1 });
  // What a SIGKILL between open and rename in writeFileAtomic leaves behind.
  mkdirSync(join(dir, 'r'), { recursive: true });
  writeFileSync(join(dir, 'r', '.tmp-0123456789ab'), '{"v":1,"n":');
  const { good, bad } = await records.loadAll();
  assert.deepEqual([...good.entries()], [['a', { v: 1, n: 1 }]]);
  assert.deepEqual(bad, []);
  assert.deepEqual(readdirSync(join(dir, 'r')), ['a.json']);
});
