import type { CricketHandlers } from '../../core/cricket-rpc.js';
import { invalidArgument } from '../../core/errors.js';
import type { Play } from '../play/api.js';

function checked(req: { manifest: string; fileName: string; logDir: string }, needLogDir: boolean) {
  if (req.manifest.trim() === '') throw invalidArgument('the manifest is empty: give the YAML text of one or more Pods');
  if (needLogDir && !req.logDir.startsWith('/')) throw invalidArgument(`log_dir must be an absolute path, not "${req.logDir}"`);
  return { text: req.manifest, file: req.fileName || 'manifest' };
}

/** cricket.v1 PlayApply, PlayDown, PlayStatus over the reconciler. */
export function makePlayHandlers(r: Play): Pick<CricketHandlers, 'PlayApply' | 'PlayDown' | 'PlayStatus'> {
  return {
    PlayApply: async (_ctx, req) => {
      const { text, file } = checked(req, true);
      return r.apply(text, file, req.logDir);
    },
    PlayDown: async (_ctx, req) => {
      const { text, file } = checked(req, false);
      return r.down(text, file);
    },
    PlayStatus: async () => ({
      pods: (await r.status()).map((p) => ({ ...p, createdAtMs: BigInt(p.createdAt) })),
    }),
  };
}
