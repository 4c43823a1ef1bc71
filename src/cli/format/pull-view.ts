import type { PullProgress } from '../../gen/cricket/v1/cricket.js';
import { bytes } from './human.js';

/**
 * Turns the stream of pull pictures into what a person reads. On a terminal: one
 * live line per layer and a total, redrawn in place (cursor up, clear line). Not on
 * a terminal: a plain line at most every `plainEveryMs`, so a log stays readable.
 * Speed and ETA come from the last few seconds of the total, measured here.
 */
export class PullView {
  readonly #write: (s: string) => void;
  readonly #tty: boolean;
  readonly #image: string;
  readonly #plainEveryMs: number;
  readonly #now: () => number;
  #drawn = 0;
  #lastPlain = -Infinity;
  readonly #samples: { t: number; done: number }[] = [];

  constructor(o: { write: (s: string) => void; tty: boolean; image: string; plainEveryMs?: number; now?: () => number }) {
    this.#write = o.write;
    this.#tty = o.tty;
    this.#image = o.image;
    this.#plainEveryMs = o.plainEveryMs ?? 2000;
    this.#now = o.now ?? Date.now;
  }

  update(p: PullProgress): void {
    const t = this.#now();
    const done = Number(p.doneBytes);
    this.#samples.push({ t, done });
    while (this.#samples.length > 2 && t - this.#samples[0]!.t > 3000) this.#samples.shift();
    const rate = this.#rate();
    if (this.#tty) return this.#draw(p, rate);
    if (p.phase === 'done' || t - this.#lastPlain >= this.#plainEveryMs) {
      this.#lastPlain = t;
      this.#write(`${this.#image}: ${totalLine(p, rate)}\n`);
    }
  }

  #rate(): number {
    const a = this.#samples[0]!;
    const b = this.#samples[this.#samples.length - 1]!;
    return b.t > a.t ? ((b.done - a.done) * 1000) / (b.t - a.t) : 0;
  }

  #draw(p: PullProgress, rate: number): void {
    const lines = p.layers.map((l) => {
      const size = Number(l.size);
      const done = Number(l.done);
      const pct = size > 0 ? Math.floor((done * 100) / size) : 100;
      const what = l.state === 'downloading' ? `${bytes(done)} / ${bytes(size)} ${String(pct).padStart(3)}%` : bytes(size);
      return `${l.digest.replace(/^sha256:/, '').slice(0, 12)}  ${l.state.padEnd(11)}  ${what}`;
    });
    if (p.phase === 'resolving') lines.push(`resolving ${this.#image}`);
    lines.push(`total  ${totalLine(p, rate)}`);
    let s = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
    for (const l of lines) s += `\r\x1b[2K${l}\n`;
    // Fewer lines than last time (a resolving line gone): clear what is left below.
    for (let i = lines.length; i < this.#drawn; i++) s += '\r\x1b[2K\n';
    if (this.#drawn > lines.length) s += `\x1b[${this.#drawn - lines.length}A`;
    this.#drawn = lines.length;
    this.#write(s);
  }
}

function totalLine(p: PullProgress, rate: number): string {
  const total = Number(p.totalBytes);
  const done = Number(p.doneBytes);
  if (p.phase === 'resolving') return 'resolving';
  const pct = total > 0 ? Math.floor((done * 100) / total) : 100;
  const left = total - done;
  const eta = p.phase === 'done' || left <= 0 ? '' : rate > 0 ? `  ETA ${Math.ceil(left / rate)}s` : '  ETA -';
  const layers = `${p.layers.filter((l) => l.state === 'done' || l.state === 'exists').length}/${p.layers.length} layers`;
  return `${bytes(done)} / ${bytes(total)} ${pct}%  ${bytes(Math.round(rate))}/s${eta}  ${layers}${p.phase === 'done' ? '  done' : ''}`;
}
