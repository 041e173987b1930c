// The local cache of cached volumes: which 1 MiB object chunks are resident, in least-recently-used
// order, across every cached volume of the gateway (AWS sizes one cache disk per gateway). When the
// resident bytes exceed the configured cache size, the least recently used CLEAN chunks are evicted
// (their blocks deleted from Level; the object store holds them). Dirty chunks are never evicted:
// they are the only copy until the uploader has stored them.

export interface EvictableVolume {
  readonly volumeId: number;
  /** Drops a clean, unpinned resident chunk from Level; false when it is dirty, pinned or gone. */
  evictObjectChunk(objectChunkIndex: number): Promise<boolean>;
}

interface Resident {
  volume: EvictableVolume;
  objectChunkIndex: number;
}

export class ChunkCache {
  private capacityBytes: number;
  private readonly objectChunkSizeBytes: number;
  /** Map order is the LRU order: the first entry is the least recently used. */
  private readonly lru = new Map<string, Resident>();
  private evicting: Promise<void> | null = null;
  /** Reads whose chunks were all resident, and chunk fetches from the object store. */
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(opts: { capacityBytes: number; objectChunkSizeBytes: number }) {
    this.capacityBytes = opts.capacityBytes;
    this.objectChunkSizeBytes = opts.objectChunkSizeBytes;
  }

  get residentBytes(): number {
    return this.lru.size * this.objectChunkSizeBytes;
  }

  get sizeBytes(): number {
    return this.capacityBytes;
  }

  setCapacityBytes(capacityBytes: number): void {
    this.capacityBytes = capacityBytes;
    this.scheduleEviction();
  }

  /** Records a use of a resident chunk (makes it the most recently used). */
  touch(volume: EvictableVolume, objectChunkIndex: number): void {
    const key = `${volume.volumeId}:${objectChunkIndex}`;
    this.lru.delete(key);
    this.lru.set(key, { volume, objectChunkIndex });
    if (this.residentBytes > this.capacityBytes) this.scheduleEviction();
  }

  forget(volumeId: number, objectChunkIndex: number): void {
    this.lru.delete(`${volumeId}:${objectChunkIndex}`);
  }

  /** Resolves when no eviction pass is running (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.evicting !== null) await this.evicting;
  }

  /** Starts an eviction pass unless one is running; it goes once through the LRU order. */
  scheduleEviction(): void {
    if (this.evicting !== null || this.residentBytes <= this.capacityBytes) return;
    this.evicting = this.evictPass().finally(() => {
      this.evicting = null;
    });
  }

  private async evictPass(): Promise<void> {
    for (const [key, resident] of [...this.lru]) {
      if (this.residentBytes <= this.capacityBytes) return;
      if (this.lru.get(key) !== resident) continue; // touched again meanwhile: no longer the LRU end
      let evicted = false;
      try {
        evicted = await resident.volume.evictObjectChunk(resident.objectChunkIndex);
      } catch {
        // A failed Level batch leaves the chunk resident; the next pass tries again.
      }
      if (evicted) {
        this.evictions++;
        if (this.lru.get(key) === resident) this.lru.delete(key);
      }
    }
  }
}
