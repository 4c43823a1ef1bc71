import { CRI_API_VERSION, KUBE_API_VERSION, RUNTIME_NAME, VERSION } from '../../core/version.js';
import type { UnaryHandler } from '../../core/rpc.js';

export const version: UnaryHandler<'Version'> = async () => ({
  version: KUBE_API_VERSION,
  runtimeName: RUNTIME_NAME,
  runtimeVersion: VERSION,
  runtimeApiVersion: CRI_API_VERSION,
});
