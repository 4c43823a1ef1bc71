import { isIP } from 'node:net';
import { invalidArgument, wrap } from '../../core/errors.js';
import type { UnaryHandler } from '../../core/rpc.js';
import type { Deps } from '../deps.js';

/** Stores the pod CIDR kubelet hands us; CNI configs may consume it. */
export function makeUpdateRuntimeConfig(deps: Deps): UnaryHandler<'UpdateRuntimeConfig'> {
  return async (ctx, req) => {
    const cidr = req.runtimeConfig?.networkConfig?.podCidr ?? '';
    if (cidr === '') return {};
    for (const part of cidr.split(',')) validateCidr(part.trim());
    if (cidr === deps.settings.podCidr) return {};
    try {
      await deps.settings.setPodCidr(cidr);
    } catch (err) {
      throw wrap(err, 'storing pod CIDR');
    }
    ctx.log.info({ podCidr: cidr }, 'pod CIDR updated');
    return {};
  };
}

function validateCidr(cidr: string): void {
  const [addr, bits, ...rest] = cidr.split('/');
  const family = isIP(addr ?? '');
  const n = Number(bits);
  const max = family === 4 ? 32 : 128;
  if (rest.length > 0 || family === 0 || !/^\d+$/.test(bits ?? '') || n > max) {
    throw invalidArgument(`pod CIDR "${cidr}" is not a valid CIDR such as 10.88.0.0/16`);
  }
}
