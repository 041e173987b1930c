// The archive stream of a tape (docs/archive.md, the virtual tape shelf): what tape-archiver.ts
// sends to the ArchiveStore and reads back on retrieval, and the manifest that describes it.
//
//   "SGTAPE01"                                            magic, 8 bytes
//   per logical object from BOP to EOD:
//     kind u8 (1 record, 2 filemark), 3 zero bytes, lengthBytes u32 BE (0 for a filemark)
//     the record's bytes
//
// The manifest (kept in the shelf record, tape-shelf-store.ts) holds the run-length encoded
// object list and the stream's size (the SHA-256 tree hash is added by the archiver), so a
// retrieval verifies every object boundary besides every byte.

import { z } from 'zod';
import type { TapeMedium } from '../../iscsi/device.js';
import { StoreError } from './store-error.js';

export const TAPE_STREAM_MAGIC = Buffer.from('SGTAPE01', 'ascii');
const OBJECT_HEADER_BYTES = 8;
const KIND_RECORD = 1;
const KIND_FILEMARK = 2;
/** Records written to a rebuilt medium before waiting for them (the medium groups them). */
const RETRIEVE_WRITE_DEPTH = 32;

/** One run of equal logical objects in a tape's archive stream: `count` records of `lengthBytes`,
 *  or `count` filemarks when lengthBytes is -1. */
export type TapeObjectRun = [lengthBytes: number, count: number];

/** What an archived tape holds, so retrieval verifies every byte and every object boundary. */
export const tapeArchiveManifestSchema = z.object({
  /** Version of the stream format. */
  format: z.literal(1),
  recordCount: z.int().nonnegative(),
  filemarkCount: z.int().nonnegative(),
  /** Record bytes (without the stream's framing). */
  dataBytes: z.int().nonnegative(),
  /** The archive stream's size. */
  streamSizeBytes: z.int().nonnegative(),
  /** Hex SHA-256 tree hash of the whole stream. */
  sha256TreeHash: z.string().regex(/^[0-9a-f]{64}$/),
  /** The records and filemarks from BOP to EOD, run-length encoded. */
  runs: z.array(z.tuple([z.int().min(-1), z.int().positive()])),
});
export type TapeArchiveManifest = z.infer<typeof tapeArchiveManifestSchema>;

/** The manifest as the stream gives it (the archiver adds the tree hash of what it sent). */
export type TapeArchiveStreamSummary = Omit<TapeArchiveManifest, 'sha256TreeHash'>;

/** The stream's size for a tape of `objectCount` objects (records and filemarks) and `usedBytes`
 *  record bytes. */
export function tapeArchiveStreamSizeBytes(usedBytes: number, objectCount: number): number {
  return TAPE_STREAM_MAGIC.length + usedBytes + OBJECT_HEADER_BYTES * objectCount;
}

/** The retrieved stream holds exactly the objects the manifest lists. */
export function matchesTapeArchiveManifest(summary: TapeArchiveStreamSummary, manifest: TapeArchiveManifest): boolean {
  return JSON.stringify(summary.runs) === JSON.stringify(manifest.runs) && summary.streamSizeBytes === manifest.streamSizeBytes;
}

/** Reads a medium from BOP to EOD as the archive stream, handing `sendPart` consecutive parts of
 *  exactly partSizeBytes (the last shorter). */
export async function encodeTapeArchiveStream(
  medium: Pick<TapeMedium, 'rewind' | 'read'>,
  partSizeBytes: number,
  sendPart: (body: Buffer) => Promise<void>,
): Promise<TapeArchiveStreamSummary> {
  let part = Buffer.allocUnsafe(partSizeBytes);
  let filled = 0;
  let streamSizeBytes = 0;
  const append = async (bytes: Buffer) => {
    let offset = 0;
    while (offset < bytes.length) {
      const n = bytes.copy(part, filled, offset);
      filled += n;
      offset += n;
      if (filled === partSizeBytes) {
        await sendPart(part);
        part = Buffer.allocUnsafe(partSizeBytes);
        filled = 0;
      }
    }
    streamSizeBytes += bytes.length;
  };
  const runs = new RunBuilder();
  await medium.rewind();
  await append(TAPE_STREAM_MAGIC);
  for (;;) {
    const object = await medium.read();
    if (object.kind === 'end-of-data') break;
    if (object.kind === 'filemark') {
      await append(objectHeader(KIND_FILEMARK, 0));
      runs.add(-1);
    } else {
      await append(objectHeader(KIND_RECORD, object.data.length));
      await append(object.data);
      runs.add(object.data.length);
    }
  }
  if (filled > 0) await sendPart(part.subarray(0, filled));
  return { format: 1, ...runs.totals(), streamSizeBytes };
}

function objectHeader(kind: number, lengthBytes: number): Buffer {
  const header = Buffer.alloc(OBJECT_HEADER_BYTES);
  header[0] = kind;
  header.writeUInt32BE(lengthBytes, 4);
  return header;
}

class RunBuilder {
  readonly runs: TapeObjectRun[] = [];
  #recordCount = 0;
  #filemarkCount = 0;
  #dataBytes = 0;

  /** A record of lengthBytes, or a filemark (-1). */
  add(lengthBytes: number): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last[0] === lengthBytes) last[1]++;
    else this.runs.push([lengthBytes, 1]);
    if (lengthBytes < 0) this.#filemarkCount++;
    else {
      this.#recordCount++;
      this.#dataBytes += lengthBytes;
    }
  }

  totals(): { recordCount: number; filemarkCount: number; dataBytes: number; runs: TapeObjectRun[] } {
    return { recordCount: this.#recordCount, filemarkCount: this.#filemarkCount, dataBytes: this.#dataBytes, runs: this.runs };
  }
}

/** Parses archive stream bytes in any chunking and writes the objects to a fresh medium. A stream
 *  that is not one, or ends inside an object, is STORE_CORRUPT. */
export class TapeArchiveStreamDecoder {
  readonly #medium: Pick<TapeMedium, 'writeRecord' | 'writeFilemarks' | 'flush'>;
  readonly #runs = new RunBuilder();
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #streamSizeBytes = 0;
  #magicSeen = false;
  #writes: Promise<unknown>[] = [];

  constructor(medium: Pick<TapeMedium, 'writeRecord' | 'writeFilemarks' | 'flush'>) {
    this.#medium = medium;
  }

  async push(chunk: Buffer): Promise<void> {
    this.#streamSizeBytes += chunk.length;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    for (;;) {
      if (!this.#magicSeen) {
        const magic = this.#take(TAPE_STREAM_MAGIC.length);
        if (!magic) return;
        if (!magic.equals(TAPE_STREAM_MAGIC)) throw new StoreError('STORE_CORRUPT', 'archive is not a shelfgate tape stream');
        this.#magicSeen = true;
        continue;
      }
      if (this.#pendingBytes < OBJECT_HEADER_BYTES) return;
      const header = this.#peek(OBJECT_HEADER_BYTES);
      const kind = header[0];
      const lengthBytes = header.readUInt32BE(4);
      if (kind === KIND_FILEMARK && lengthBytes === 0) {
        this.#take(OBJECT_HEADER_BYTES);
        await this.#settle();
        await this.#medium.writeFilemarks(1);
        this.#runs.add(-1);
        continue;
      }
      if (kind !== KIND_RECORD) throw new StoreError('STORE_CORRUPT', `archive stream has an object of kind ${kind}`);
      if (this.#pendingBytes < OBJECT_HEADER_BYTES + lengthBytes) return;
      this.#take(OBJECT_HEADER_BYTES);
      const data = this.#take(lengthBytes)!;
      this.#writes.push(this.#medium.writeRecord(data));
      this.#runs.add(lengthBytes);
      if (this.#writes.length >= RETRIEVE_WRITE_DEPTH) await this.#settle();
    }
  }

  /** Waits for every write; throws when the stream ends mid-object. */
  async end(): Promise<TapeArchiveStreamSummary> {
    await this.#settle();
    if (this.#pendingBytes !== 0 || !this.#magicSeen) throw new StoreError('STORE_CORRUPT', 'archive stream ends inside an object');
    await this.#medium.flush();
    return { format: 1, ...this.#runs.totals(), streamSizeBytes: this.#streamSizeBytes };
  }

  async #settle(): Promise<void> {
    const writes = this.#writes;
    this.#writes = [];
    await Promise.all(writes);
  }

  #peek(lengthBytes: number): Buffer {
    const joined = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    this.#pending = [joined];
    return joined.subarray(0, lengthBytes);
  }

  #take(lengthBytes: number): Buffer | undefined {
    if (this.#pendingBytes < lengthBytes) return undefined;
    const joined = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    const taken = Buffer.from(joined.subarray(0, lengthBytes));
    const rest = joined.subarray(lengthBytes);
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes -= lengthBytes;
    return taken;
  }
}
