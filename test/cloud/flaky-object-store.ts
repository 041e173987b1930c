// FlakyObjectStore: a real ObjectStore decorator that injects outages, for tests of whatever sits
// above an object store (uploader, catch-up after an outage). Faults are CloudErrors exactly as the
// real stores throw them, raised before the inner store is touched.

import { CloudError } from '../../src/cloud/cloud-error.js';
import type {
  ListOptions,
  ObjectHead,
  ObjectListEntry,
  ObjectRange,
  ObjectStore,
  PutOptions,
  PutResult,
} from '../../src/cloud/object-store.js';

export class FlakyObjectStore implements ObjectStore {
  readonly kind: string;
  readonly inner: ObjectStore;
  /** Calls that reached the inner store, and calls failed by injection. */
  passedCalls = 0;
  failedCalls = 0;
  #outage: CloudError | null = null;
  #failNext = 0;

  constructor(inner: ObjectStore) {
    this.inner = inner;
    this.kind = `flaky(${inner.kind})`;
  }

  /** Every call fails with `err` until endOutage(). */
  startOutage(err: CloudError = new CloudError('CLOUD_UNAVAILABLE', 'injected outage: endpoint unreachable')): void {
    this.#outage = err;
  }

  endOutage(): void {
    this.#outage = null;
  }

  /** The next `count` calls fail transiently, then calls pass again. */
  failNext(count: number): void {
    this.#failNext = count;
  }

  put(key: string, body: Buffer, opts?: PutOptions): Promise<PutResult> {
    return this.#call(() => this.inner.put(key, body, opts));
  }

  get(key: string, range?: ObjectRange): Promise<Buffer> {
    return this.#call(() => this.inner.get(key, range));
  }

  head(key: string): Promise<ObjectHead | null> {
    return this.#call(() => this.inner.head(key));
  }

  delete(key: string): Promise<void> {
    return this.#call(() => this.inner.delete(key));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#call(() => this.inner.deleteMany(keys));
  }

  async *list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectListEntry> {
    this.#inject();
    yield* this.inner.list(prefix, opts);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    this.#inject();
    return operation();
  }

  #inject(): void {
    if (this.#outage !== null) {
      this.failedCalls++;
      throw this.#outage;
    }
    if (this.#failNext > 0) {
      this.#failNext--;
      this.failedCalls++;
      throw new CloudError('CLOUD_UNAVAILABLE', 'injected transient failure');
    }
    this.passedCalls++;
  }
}
