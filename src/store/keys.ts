// Key layout of the gateway's one Level database (`<dataDir>/db`).
//
// Every key starts with one key-space byte, so each kind of record is a contiguous, bounded range
// and one Level batch can touch several kinds atomically (a block write and, in a later issue, its
// upload-queue entry). Integers are big-endian so byte order equals numeric order for iterators.
//
//   0x01 BLOCK    | volumeId u32 | chunkIndex u64          -> chunk bytes (absent = zeros)
//   0x02 CATALOG  | volume name (UTF-8)                     -> VolumeRecord JSON
//   0x03 TAPE     (reserved for the tape-record issue)
//   0x04 UPLOAD   | volumeId u32 | objectChunkIndex u64    -> dirty sequence u64 (upload-queue.ts)
//   0x05 TAPE_CATALOG (tape-catalog-store.ts)
//   0x06 OBJECT   | volumeId u32 | objectChunkIndex u64    -> sha256 (32 bytes) + flags u8: the
//                  last uploaded content of a 1 MiB object chunk and whether it is resident locally
//   0x07 TAPE_SHELF (tape-shelf-store.ts)
//   0x08 TAPE_UPLOAD (tape-object-layout.ts)
//   0x09 PAGE     | volumeId u32 | pageIndex u64           -> block-map runs (block-map.ts)
//   0x0A LOG      | volumeId u32                           -> segment log checkpoint JSON
//                  (volume-checkpoint.ts: replay marker, live bytes per segment, write cache)
//   0x10 SETTINGS | setting name (UTF-8)                   -> JSON (gateway id, bandwidth limits …)

export const KeySpace = {
  BLOCK: 0x01,
  CATALOG: 0x02,
  TAPE: 0x03,
  UPLOAD: 0x04,
  OBJECT: 0x06,
  PAGE: 0x09,
  LOG: 0x0a,
  SETTINGS: 0x10,
} as const;

const BLOCK_KEY_LENGTH = 1 + 4 + 8;

export function blockKey(volumeId: number, chunkIndex: number): Buffer {
  const key = Buffer.allocUnsafe(BLOCK_KEY_LENGTH);
  key[0] = KeySpace.BLOCK;
  key.writeUInt32BE(volumeId, 1);
  key.writeBigUInt64BE(BigInt(chunkIndex), 5);
  return key;
}

export function decodeBlockKey(key: Uint8Array): { volumeId: number; chunkIndex: number } {
  const buf = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  if (buf.length !== BLOCK_KEY_LENGTH || buf[0] !== KeySpace.BLOCK) {
    throw new RangeError(`not a block key: ${buf.toString('hex')}`);
  }
  return { volumeId: buf.readUInt32BE(1), chunkIndex: Number(buf.readBigUInt64BE(5)) };
}

/** Bounds of every chunk of one volume: [gte, lt). */
export function volumeBlockRange(volumeId: number): { gte: Buffer; lt: Buffer } {
  const gte = Buffer.alloc(5);
  gte[0] = KeySpace.BLOCK;
  gte.writeUInt32BE(volumeId, 1);
  const lt = Buffer.alloc(5);
  if (volumeId === 0xffffffff) {
    lt[0] = KeySpace.BLOCK + 1;
  } else {
    lt[0] = KeySpace.BLOCK;
    lt.writeUInt32BE(volumeId + 1, 1);
  }
  return { gte, lt };
}

export function catalogKey(volumeName: string): Buffer {
  return Buffer.concat([Buffer.of(KeySpace.CATALOG), Buffer.from(volumeName, 'utf8')]);
}

/** Bounds of the whole volume catalog: [gte, lt). */
export function catalogRange(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.of(KeySpace.CATALOG), lt: Buffer.of(KeySpace.CATALOG + 1) };
}

export function settingsKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(KeySpace.SETTINGS), Buffer.from(name, 'utf8')]);
}

const VOLUME_INDEX_KEY_LENGTH = 1 + 4 + 8;

/** space u8 | volumeId u32 | index u64: the keys of UPLOAD, OBJECT and PAGE. */
function volumeIndexKey(space: number, volumeId: number, index: number): Buffer {
  const key = Buffer.allocUnsafe(VOLUME_INDEX_KEY_LENGTH);
  key[0] = space;
  key.writeUInt32BE(volumeId, 1);
  key.writeBigUInt64BE(BigInt(index), 5);
  return key;
}

function decodeVolumeIndexKey(key: Uint8Array, ...spaces: number[]): { space: number; volumeId: number; index: number } {
  const buf = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  if (buf.length !== VOLUME_INDEX_KEY_LENGTH || !spaces.includes(buf[0]!)) throw new RangeError(`not a key of space ${spaces.join('/')}: ${buf.toString('hex')}`);
  return { space: buf[0]!, volumeId: buf.readUInt32BE(1), index: Number(buf.readBigUInt64BE(5)) };
}

/** Key of a 1 MiB object chunk in key space UPLOAD (queue entry) or OBJECT (uploaded state). */
export function objectChunkKey(space: typeof KeySpace.UPLOAD | typeof KeySpace.OBJECT, volumeId: number, objectChunkIndex: number): Buffer {
  return volumeIndexKey(space, volumeId, objectChunkIndex);
}

export function decodeObjectChunkKey(key: Uint8Array): { space: number; volumeId: number; objectChunkIndex: number } {
  const { space, volumeId, index } = decodeVolumeIndexKey(key, KeySpace.UPLOAD, KeySpace.OBJECT);
  return { space, volumeId, objectChunkIndex: index };
}

/** Bounds of a whole key space (UPLOAD or OBJECT): [gte, lt). */
export function keySpaceRange(space: number): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.of(space), lt: Buffer.of(space + 1) };
}

/** Key of one block-map page of a volume (block-map.ts): the layout of OBJECT keys in space PAGE. */
export function pageKey(volumeId: number, pageIndex: number): Buffer {
  return volumeIndexKey(KeySpace.PAGE, volumeId, pageIndex);
}

export function decodePageKey(key: Uint8Array): { volumeId: number; page: number } {
  const { volumeId, index } = decodeVolumeIndexKey(key, KeySpace.PAGE);
  return { volumeId, page: index };
}

/** Bounds of every block-map page of one volume: [gte, lt). */
export function volumePageRange(volumeId: number): { gte: Buffer; lt: Buffer } {
  return { gte: pageKey(volumeId, 0), lt: pageKey(volumeId, Number.MAX_SAFE_INTEGER) };
}

/** Key of a volume's segment-log checkpoint record. */
export function logStateKey(volumeId: number): Buffer {
  const key = Buffer.allocUnsafe(5);
  key[0] = KeySpace.LOG;
  key.writeUInt32BE(volumeId, 1);
  return key;
}
