import { z } from 'zod';
import { join } from 'node:path';
import { JsonRecordDir } from '../../store/json-record.js';

const SettingsRecord = z.object({ v: z.literal(1), podCidr: z.string() });

/**
 * Settings kubelet pushes at run time (UpdateRuntimeConfig). Kept on disk so a
 * restarted daemon still knows the pod CIDR before kubelet sends it again.
 */
export class RuntimeSettings {
  readonly #store: JsonRecordDir<typeof SettingsRecord>;
  #podCidr: string;

  constructor(root: string, initialPodCidr: string) {
    this.#store = new JsonRecordDir(join(root, 'settings'), SettingsRecord);
    this.#podCidr = initialPodCidr;
  }

  async load(): Promise<void> {
    const rec = await this.#store.get('runtime');
    if (rec && rec.podCidr) this.#podCidr = rec.podCidr;
  }

  get podCidr(): string {
    return this.#podCidr;
  }

  async setPodCidr(cidr: string): Promise<void> {
    await this.#store.put('runtime', { v: 1, podCidr: cidr });
    this.#podCidr = cidr;
  }
}
