// The data keys of an encrypted bucket (docs/encryption.md "Keys"): objects are encrypted under
// data keys, each shared by a bounded group of objects (at most GROUP_MAX_OBJECTS, and a new group
// per start) and stored wrapped by the key-encryption key next to the data:
//
//   encryption/data-keys/<group id hex>   { format: 1, groupId, createdAt, wrapped }
//   encryption/naming-key                 { format: 1, createdAt, wrapped }  (the keyed-hash secret)
//
// A group's key object is put before the first object encrypted under it. Rotation (rewrapAll)
// re-wraps these small objects under a new key-encryption key and never touches the data.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CloudError } from './cloud-error.js';
import type { EncryptionContext, KeyProvider, WrappedDataKey } from './key-provider.js';
import { GROUP_ID_BYTES } from './object-envelope.js';
import type { ObjectStore } from './object-store.js';

export const KEY_OBJECT_PREFIX = 'encryption/';
const DATA_KEY_PREFIX = 'encryption/data-keys/';
const NAMING_KEY = 'encryption/naming-key';
/** Objects encrypted under one data key before a new one is made. */
export const GROUP_MAX_OBJECTS = 1 << 20;

const wrappedSchema = z.strictObject({
  provider: z.enum(['local', 'kms']),
  keyId: z.string().min(1),
  ciphertext: z.string().min(1),
});
const keyObjectSchema = z.strictObject({
  format: z.literal(1),
  groupId: z.string().regex(/^[0-9a-f]{32}$/).optional(),
  createdAt: z.string(),
  wrapped: wrappedSchema,
});
type KeyObject = z.infer<typeof keyObjectSchema>;

function dataKeyContext(groupId: string): EncryptionContext {
  return { 'shelfgate:purpose': 'data-key', 'shelfgate:group': groupId };
}
const NAMING_CONTEXT: EncryptionContext = { 'shelfgate:purpose': 'naming-key' };

export class DataKeyRing {
  readonly #store: ObjectStore;
  #provider: KeyProvider;
  readonly #keys = new Map<string, Promise<Buffer | null>>();
  #group: Promise<{ groupId: string; dataKey: Buffer }> | null = null;
  #groupObjects = 0;

  constructor(store: ObjectStore, provider: KeyProvider) {
    this.#store = store;
    this.#provider = provider;
  }

  get provider(): KeyProvider {
    return this.#provider;
  }

  /** The keyed-hash secret of the bucket, created with the bucket's first encrypted object. A
   *  bucket whose naming key this provider cannot unwrap belongs to another key: CLOUD_KEY. */
  async namingKey(): Promise<Buffer> {
    const stored = await this.#read(NAMING_KEY);
    if (stored !== null) return this.#unwrap(NAMING_KEY, stored.wrapped, NAMING_CONTEXT);
    const { plaintext, wrapped } = await this.#provider.generateDataKey(NAMING_CONTEXT);
    await this.#write(NAMING_KEY, { format: 1, createdAt: new Date().toISOString(), wrapped });
    return plaintext;
  }

  /** The group new objects are encrypted in (its key object is stored before this resolves). */
  async writeGroup(): Promise<{ groupId: string; dataKey: Buffer }> {
    if (this.#group === null || this.#groupObjects >= GROUP_MAX_OBJECTS) {
      this.#groupObjects = 0;
      const group = this.#newGroup();
      this.#group = group;
      group.catch(() => {
        if (this.#group === group) this.#group = null;
      });
    }
    this.#groupObjects++;
    return this.#group;
  }

  /** The data key of a group, unwrapped once and cached; null when the bucket holds no such group
   *  (the header naming it was changed). */
  dataKey(groupId: string): Promise<Buffer | null> {
    let key = this.#keys.get(groupId);
    if (key === undefined) {
      key = this.#loadDataKey(groupId);
      this.#keys.set(groupId, key);
      key.then(
        (k) => k === null && this.#keys.delete(groupId),
        () => this.#keys.delete(groupId),
      );
    }
    return key;
  }

  /** Re-wraps every data key and the naming key under `to` (default: the provider's current key,
   *  after LocalKeyProvider.rotate or a new KMS key id). The data objects are not touched. Returns
   *  how many key objects were re-wrapped. */
  async rewrapAll(to: KeyProvider = this.#provider, progress?: (done: number) => void): Promise<number> {
    let done = 0;
    for await (const entry of this.#store.list(KEY_OBJECT_PREFIX)) {
      const stored = await this.#read(entry.key);
      if (stored === null) continue;
      const context = entry.key === NAMING_KEY ? NAMING_CONTEXT : dataKeyContext(stored.groupId ?? '');
      const plaintext = await this.#unwrap(entry.key, stored.wrapped, context);
      await this.#write(entry.key, { ...stored, wrapped: await to.wrap(plaintext, context) });
      done++;
      progress?.(done);
    }
    this.#provider = to;
    return done;
  }

  async #newGroup(): Promise<{ groupId: string; dataKey: Buffer }> {
    const groupId = randomBytes(GROUP_ID_BYTES).toString('hex');
    const { plaintext, wrapped } = await this.#provider.generateDataKey(dataKeyContext(groupId));
    await this.#write(DATA_KEY_PREFIX + groupId, { format: 1, groupId, createdAt: new Date().toISOString(), wrapped });
    this.#keys.set(groupId, Promise.resolve(plaintext));
    return { groupId, dataKey: plaintext };
  }

  async #loadDataKey(groupId: string): Promise<Buffer | null> {
    const key = DATA_KEY_PREFIX + groupId;
    const stored = await this.#read(key);
    if (stored === null || stored.groupId !== groupId) return null;
    return this.#unwrap(key, stored.wrapped, dataKeyContext(groupId));
  }

  async #unwrap(key: string, wrapped: WrappedDataKey, context: EncryptionContext): Promise<Buffer> {
    try {
      return await this.#provider.unwrap(wrapped, context);
    } catch (err) {
      if (err instanceof CloudError && err.code === 'CLOUD_KEY') {
        throw new CloudError('CLOUD_KEY', `cannot unwrap ${key}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  async #read(key: string): Promise<KeyObject | null> {
    let body: Buffer;
    try {
      body = await this.#store.get(key);
    } catch (err) {
      if (err instanceof CloudError && err.code === 'CLOUD_NOT_FOUND') return null;
      throw err;
    }
    const parsed = keyObjectSchema.safeParse((() => {
      try {
        return JSON.parse(body.toString('utf8'));
      } catch {
        return null;
      }
    })());
    if (!parsed.success) throw new CloudError('CLOUD_KEY', `key object ${key} is damaged`);
    return parsed.data;
  }

  async #write(key: string, value: KeyObject): Promise<void> {
    await this.#store.put(key, Buffer.from(JSON.stringify(value), 'utf8'), { metadata: { format: '1' } });
  }
}
