// A point-in-time capture of a volume for snapshots (docs/storage-engine.md "Snapshots"). The
// caller (SegmentBlockStore.captureObjectChunks) hands over, taken in one tick: the block-map pages
// in memory (newer than Level), a Level iterator over the volume's pages (LevelDB snapshots it when
// created) and a copy of the object states. Every write acknowledged before that tick is in the
// capture and none started after it. The log's segments stay while the capture is open.

import type { Runs } from './block-map.js';
import { decodeRuns } from './block-map.js';
import { decodePageKey } from './keys.js';
import type { CapturedObjectChunk, ObjectChunkCapture, ObjectChunkState } from './storage-engine.js';

export interface CaptureSource {
  volumeId: number;
  blockSize: number;
  blocksPerPage: number;
  blockCount: number;
  pages: Map<number, Runs>;
  iterator: AsyncIterableIterator<[Buffer, Buffer]> & { close(): Promise<void> };
  states: Map<number, ObjectChunkState>;
  /** Reads record data at a log offset. */
  read(into: Buffer, intoOffset: number, lengthBytes: number, logOffset: number): Promise<void>;
  /** Called once when the capture is closed (or fully iterated). */
  release(): void;
}

/** Yields each object chunk holding data, in index order: its bytes, or — for a chunk not resident
 *  locally — the SHA-256 of its stored object and the volume owning it. All-zero chunks are skipped. */
export function captureVolume(source: CaptureSource): ObjectChunkCapture {
  const { volumeId, blockSize, blocksPerPage, blockCount, pages, iterator, states } = source;
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    source.release();
    await iterator.close().catch(() => undefined);
  };
  const readPage = async (page: number, runs: Runs): Promise<Buffer | null> => {
    const blocks = Math.min(blocksPerPage, blockCount - page * blocksPerPage);
    if (blocks <= 0 || runs.length === 0) return null;
    const out = Buffer.alloc(blocks * blockSize);
    for (const run of runs) {
      const count = Math.min(run.blockCount, blocks - run.startBlock);
      if (count > 0) await source.read(out, run.startBlock * blockSize, count * blockSize, run.logOffset);
    }
    return isAllZeros(out) ? null : out;
  };
  const memoryPages = [...pages.keys()].sort((a, b) => a - b);
  async function* generate(): AsyncGenerator<CapturedObjectChunk> {
    const remote = [...states].filter(([, s]) => !s.resident).sort((a, b) => a[0] - b[0]);
    let remoteAt = 0;
    let memoryAt = 0;
    const emit = async function* (page: number, runs: Runs): AsyncGenerator<CapturedObjectChunk> {
      while (remoteAt < remote.length && remote[remoteAt]![0] < page) {
        const [objectChunkIndex, state] = remote[remoteAt++]!;
        yield {
          objectChunkIndex,
          sha256: state.sha256,
          sourceVolumeId: state.sourceVolumeId ?? volumeId,
          ...(state.sourceGatewayId !== undefined ? { sourceGatewayId: state.sourceGatewayId } : {}),
        };
      }
      if (states.get(page)?.resident === false) return; // its object is the content
      const data = await readPage(page, runs);
      if (data !== null) yield { objectChunkIndex: page, data };
    };
    try {
      // Level's pages in order, each replaced by its in-memory version when there is one.
      for await (const [key, value] of iterator) {
        const { page } = decodePageKey(key);
        while (memoryAt < memoryPages.length && memoryPages[memoryAt]! < page) {
          const p = memoryPages[memoryAt++]!;
          yield* emit(p, pages.get(p)!);
        }
        if (memoryPages[memoryAt] === page) {
          memoryAt++;
          yield* emit(page, pages.get(page)!);
        } else {
          yield* emit(page, decodeRuns(value, blocksPerPage, `volume ${volumeId} page ${page}`));
        }
      }
      while (memoryAt < memoryPages.length) {
        const p = memoryPages[memoryAt++]!;
        yield* emit(p, pages.get(p)!);
      }
      yield* emit(Number.MAX_SAFE_INTEGER, []);
    } finally {
      await release();
    }
  }
  const chunks = generate();
  return { [Symbol.asyncIterator]: () => chunks, close: release };
}

const ZEROS = Buffer.alloc(64 * 1024);

export function isAllZeros(buf: Buffer): boolean {
  for (let offset = 0; offset < buf.length; offset += ZEROS.length) {
    const piece = buf.subarray(offset, offset + ZEROS.length);
    if (!piece.equals(ZEROS.subarray(0, piece.length))) return false;
  }
  return true;
}
