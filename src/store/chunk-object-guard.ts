// Garbage collection against the gateway's own writers (docs/object-layout.md "Garbage
// collection"). A writer that finds a chunk object already stored (a HEAD) and then refers to it
// must not lose it to a sweep that decided, from manifests read a moment before, that nothing
// refers to it. Both sides meet here, in the one process that writes the gateway's prefix:
//
// - a writer `use`s the key before its HEAD (waiting for a deletion of it in flight to finish, so
//   the HEAD then answers "missing" and it puts the object again) and releases it once the
//   reference is recorded; a snapshot keeps its keys until its manifest is stored;
// - the collector calls `beginMark` before reading manifests and local states, and
//   `deleteUnlessUsed` for each candidate: a key used since the mark began, or in use now, is
//   kept (the next collection decides again).

export class ChunkObjectGuard {
  readonly #inUse = new Map<string, number>();
  readonly #deleting = new Map<string, Promise<void>>();
  #usedSinceMark: Set<string> | null = null;

  /** Marks `key` in use until the returned function is called (idempotent). */
  async use(key: string): Promise<() => void> {
    this.#usedSinceMark?.add(key);
    this.#inUse.set(key, (this.#inUse.get(key) ?? 0) + 1);
    for (let deletion = this.#deleting.get(key); deletion !== undefined; deletion = this.#deleting.get(key)) {
      await deletion.catch(() => undefined);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const count = (this.#inUse.get(key) ?? 1) - 1;
      if (count === 0) this.#inUse.delete(key);
      else this.#inUse.set(key, count);
    };
  }

  /** A collection starts reading what refers to objects. */
  beginMark(): void {
    this.#usedSinceMark = new Set();
  }

  /** The collection is over. */
  endSweep(): void {
    this.#usedSinceMark = null;
  }

  /** Runs `remove` unless a writer used `key` since the mark began or uses it now; answers
   *  whether it ran. */
  async deleteUnlessUsed(key: string, remove: () => Promise<void>): Promise<boolean> {
    if (this.#inUse.has(key) || this.#usedSinceMark?.has(key) === true || this.#deleting.has(key)) return false;
    const deletion = remove();
    this.#deleting.set(key, deletion);
    try {
      await deletion;
    } finally {
      this.#deleting.delete(key);
    }
    return true;
  }
}
