// One part of a bucket as an ObjectStore of its own: every key gets `prefix` in front, listings
// strip it again. A gateway writes only through such a view of its own prefix,
// `gateways/<gateway-id>/` (docs/object-layout.md "Many gateways on one bucket"), so nothing it
// does can touch another gateway's objects.
//
// `fallbackToRoot` is for data dirs written before the per-gateway layout: their objects sit at
// the bucket's root, so `get` and `head` of a key missing under the prefix read the same key at
// the root. Writes, deletes and listings stay under the prefix.

import type { ListOptions, ObjectHead, ObjectListEntry, ObjectRange, ObjectStore, PutOptions, PutResult } from './object-store.js';
import { CloudError } from './cloud-error.js';

export class PrefixedObjectStore implements ObjectStore {
  readonly kind: string;
  readonly prefix: string;
  readonly #inner: ObjectStore;
  readonly #fallbackToRoot: boolean;

  constructor(inner: ObjectStore, prefix: string, opts: { fallbackToRoot?: boolean } = {}) {
    this.#inner = inner;
    this.prefix = prefix;
    this.kind = inner.kind;
    this.#fallbackToRoot = opts.fallbackToRoot === true && prefix !== '';
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<PutResult> {
    return this.#inner.put(this.prefix + key, body, opts);
  }

  async get(key: string, range?: ObjectRange): Promise<Buffer> {
    try {
      return await this.#inner.get(this.prefix + key, range);
    } catch (err) {
      if (!this.#fallbackToRoot || !(err instanceof CloudError) || err.code !== 'CLOUD_NOT_FOUND') throw err;
      return this.#inner.get(key, range);
    }
  }

  async head(key: string): Promise<ObjectHead | null> {
    const head = await this.#inner.head(this.prefix + key);
    if (head !== null || !this.#fallbackToRoot) return head;
    return this.#inner.head(key);
  }

  delete(key: string): Promise<void> {
    return this.#inner.delete(this.prefix + key);
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#inner.deleteMany(keys.map((key) => this.prefix + key));
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectListEntry> {
    const inner: ListOptions = { ...opts };
    if (opts.startAfter !== undefined) inner.startAfter = this.prefix + opts.startAfter;
    for await (const entry of this.#inner.list(this.prefix + prefix, inner)) {
      yield { ...entry, key: entry.key.slice(this.prefix.length) };
    }
  }

  /** The bucket is shared: closing a view leaves it open (its owner closes it). */
  async close(): Promise<void> {}
}
