import { constants } from 'node:os';
import { invalidArgument } from '../core/errors.js';
import { Signal, signalToJSON } from '../gen/runtime/v1/api.js';

const SIGNALS = constants.signals as Record<string, number>;

/** "TERM", "SIGTERM", "15" → "SIGTERM"; undefined for an unknown signal. */
export function normalizeSignal(s: string): string | undefined {
  const t = s.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return Object.keys(SIGNALS).find((k) => SIGNALS[k] === n);
  }
  const name = t.startsWith('SIG') ? t : `SIG${t}`;
  return name in SIGNALS ? name : undefined;
}

/** The config's stop_signal, else the image's STOPSIGNAL, else SIGTERM. */
export function chooseStopSignal(cri: Signal, image: string | undefined): string {
  if (cri !== Signal.SIGNAL_RUNTIME_DEFAULT && cri !== Signal.UNRECOGNIZED) {
    const name = signalToJSON(cri).replace(/^SIGNAL_/, '');
    const n = normalizeSignal(name);
    if (!n) throw invalidArgument(`stop_signal ${name} is not a signal this node knows`);
    return n;
  }
  if (image) {
    const n = normalizeSignal(image);
    if (!n) throw invalidArgument(`the image's STOPSIGNAL "${image}" is not a known signal`);
    return n;
  }
  return 'SIGTERM';
}

export function signalFromName(name: string): Signal {
  const key = `SIGNAL_${name}` as keyof typeof Signal;
  return (Signal[key] as Signal | undefined) ?? Signal.SIGNAL_RUNTIME_DEFAULT;
}
