import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable } from '../../src/cli/format/table.js';
import { ago, age, bytes, shortId, stateName } from '../../src/cli/format/human.js';
import { parseFormat, renderData } from '../../src/cli/format/output.js';
import { PullView } from '../../src/cli/format/pull-view.js';
import { PullProgress } from '../../src/gen/cricket/v1/cricket.js';
import { UsageError } from '../../src/cli/exit-codes.js';

test('renderTable: columns three apart, nothing cut without a width', () => {
  const out = renderTable([{ header: 'A' }, { header: 'NAME', shrink: true }], [['x', 'a-long-name'], ['yy', 'b']], undefined);
  assert.equal(out, 'A    NAME\nx    a-long-name\nyy   b\n');
});

test('renderTable: shrinkable columns are cut, then droppable ones go, to fit the width', () => {
  const cols = [{ header: 'ID' }, { header: 'NAME', shrink: true }, { header: 'ATTEMPT', drop: 1 }, { header: 'POD', shrink: true }];
  const rows = [['0123456789abc', 'a-very-long-container-name', '0', 'a-very-long-pod-name']];
  for (const width of [60, 40, 30]) {
    const out = renderTable(cols, rows, width);
    for (const line of out.trimEnd().split('\n')) assert.ok(line.length <= width, `${JSON.stringify(line)} > ${width}`);
    assert.match(out, /^ID/);
  }
  assert.doesNotMatch(renderTable(cols, rows, 30), /ATTEMPT/);
  assert.match(renderTable(cols, rows, 60), /ATTEMPT/);
  assert.match(renderTable(cols, rows, 40), /…/);
});

test('human forms', () => {
  const now = 1_000_000_000_000;
  const ns = (ms: number) => BigInt(ms) * 1_000_000n;
  assert.equal(ago(ns(now - 3 * 60_000), now), '3 minutes ago');
  assert.equal(ago(ns(now - 1000), now), '1 second ago');
  assert.equal(ago(0n, now), '');
  assert.equal(age(ns(now - 90_000), now), '90s');
  assert.equal(age(ns(now - 3 * 3600_000), now), '3h');
  assert.equal(bytes(999), '999B');
  assert.equal(bytes(4_200_000), '4.20MB');
  assert.equal(bytes(123_456_789n), '123MB');
  assert.equal(shortId(`sha256:${'ab'.repeat(32)}`), 'ababababababa');
  assert.equal(shortId('x'.repeat(64), true), 'x'.repeat(64));
  assert.equal(stateName('CONTAINER_RUNNING'), 'Running');
  assert.equal(stateName('SANDBOX_NOTREADY'), 'NotReady');
});

test('output formats: json and yaml of protos, bigints as strings; a bad -o is usage', async () => {
  assert.equal(await renderData({ a: 1n, b: ['x'] }, 'json'), '{\n  "a": "1",\n  "b": [\n    "x"\n  ]\n}\n');
  assert.equal(await renderData({ a: 1n, b: ['x'] }, 'yaml'), 'a: "1"\nb:\n  - x\n');
  assert.equal(parseFormat(undefined), 'table');
  assert.throws(() => parseFormat('xml'), UsageError);
  assert.throws(() => parseFormat('table', ['json', 'yaml']), UsageError);
});

const picture = (o: { phase: string; done: number; layers?: [string, number, number, string][] }) =>
  PullProgress.fromPartial({
    phase: o.phase,
    totalBytes: 2000n,
    doneBytes: BigInt(o.done),
    layers: (o.layers ?? []).map(([digest, size, done, state]) => ({ digest, size: BigInt(size), done: BigInt(done), state })),
  });

test('PullView on a terminal: a line per layer and a total, redrawn over the last picture', () => {
  let out = '';
  let t = 0;
  const v = new PullView({ write: (s) => (out += s), tty: true, image: 'busybox', now: () => t });
  const a = `sha256:${'a'.repeat(64)}`;
  const b = `sha256:${'b'.repeat(64)}`;
  v.update(picture({ phase: 'layers', done: 0, layers: [[a, 1000, 0, 'downloading'], [b, 1000, 0, 'waiting']] }));
  assert.equal(out.split('\n').length - 1, 3);
  assert.doesNotMatch(out, /\x1b\[\d+A/);
  out = '';
  t = 1000;
  v.update(picture({ phase: 'layers', done: 500, layers: [[a, 1000, 500, 'downloading'], [b, 1000, 0, 'waiting']] }));
  assert.match(out, /^\x1b\[3A/);
  assert.match(out, /aaaaaaaaaaaa {2}downloading {2}500B \/ 1.00kB {2}50%/);
  assert.match(out, /total {2}500B \/ 2.00kB 25% {2}500B\/s {2}ETA 3s {2}0\/2 layers/);
});

test('PullView in a pipe: a plain line at most every interval, and always the last', () => {
  const lines: string[] = [];
  let t = 0;
  const v = new PullView({ write: (s) => lines.push(s), tty: false, image: 'busybox', plainEveryMs: 2000, now: () => t });
  v.update(picture({ phase: 'resolving', done: 0 }));
  t = 500;
  v.update(picture({ phase: 'layers', done: 100 }));
  t = 2100;
  v.update(picture({ phase: 'layers', done: 1000 }));
  t = 2200;
  v.update(picture({ phase: 'done', done: 2000 }));
  assert.equal(lines.length, 3);
  assert.equal(lines[0], 'busybox: resolving\n');
  assert.match(lines[2]!, /^busybox: 2.00kB \/ 2.00kB 100% .* done\n$/);
  assert.ok(lines.every((l) => !l.includes('\x1b')));
});
