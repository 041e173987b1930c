// Mutual exclusion over chunk ranges for read-modify-write. A caller locks the contiguous range
// of chunks it touches; its place in line is taken synchronously at the call, so overlapping
// requests apply in arrival order and can never wait for each other in a cycle (each waits only
// for earlier ones). A range costs O(1) however long it is, so a whole-volume UNMAP can lock too.
// At most a few dozen requests are outstanding (the initiator's queue depth), so a list suffices.

interface Holder {
  firstChunk: number;
  endChunk: number;
  released: Promise<void>;
}

export class ChunkRangeLocks {
  private holders: Holder[] = [];

  /** Locks chunks [firstChunk, endChunk); resolves with the release function once every earlier
   *  overlapping holder released. Must be called synchronously where arrival order matters. */
  acquire(firstChunk: number, endChunk: number): Promise<() => void> {
    const earlier = this.holders
      .filter((h) => h.firstChunk < endChunk && firstChunk < h.endChunk)
      .map((h) => h.released);
    let resolveReleased!: () => void;
    const holder: Holder = {
      firstChunk,
      endChunk,
      released: new Promise<void>((resolve) => {
        resolveReleased = resolve;
      }),
    };
    this.holders.push(holder);
    const release = (): void => {
      this.holders = this.holders.filter((h) => h !== holder);
      resolveReleased();
    };
    return earlier.length === 0 ? Promise.resolve(release) : Promise.all(earlier).then(() => release);
  }
}
