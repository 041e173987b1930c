// Re-indexing a tape's data file beyond what Level knows (tape-medium.ts: the index lags the data
// file). From the indexed EOD on, each frame (tape-frame.ts) is taken as the next object while it
// is whole and current: a valid header CRC, the header's generation, the next logical object id,
// and for a record, all its bytes with a matching CRC. The first frame that is not ends the
// tape there — a torn write of a group that was never acknowledged, zeros of the preallocated
// tail, or a stale frame of an older generation.

import type { FileHandle } from 'node:fs/promises';
import type { BatchOp } from './group-commit.js';
import { decodeFrameHeader, FRAME_HEADER_BYTES, recordChecksum } from './tape-frame.js';
import type { TapeHeader } from './tape-header.js';
import { encodeObjectEntry, encodeObjectId, type TapeKeys } from './tape-keys.js';

export interface RecoveredTape {
  /** The header with EOD after the last valid frame. */
  header: TapeHeader;
  /** Index entries of the recovered objects. */
  ops: BatchOp[];
  recoveredObjects: number;
}

export async function recoverTape(file: FileHandle, indexed: TapeHeader, keys: TapeKeys): Promise<RecoveredTape> {
  const header = { ...indexed };
  const ops: BatchOp[] = [];
  const { size: fileSizeBytes } = await file.stat();
  const frameBuf = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  let recoveredObjects = 0;
  for (;;) {
    const offsetBytes = header.dataEndBytes;
    if (offsetBytes + FRAME_HEADER_BYTES > fileSizeBytes) break;
    if ((await readFully(file, frameBuf, offsetBytes)) < FRAME_HEADER_BYTES) break;
    const frame = decodeFrameHeader(frameBuf);
    if (frame === null || frame.generation !== header.generation || frame.objectId !== header.eodObjectId) break;
    const endBytes = offsetBytes + FRAME_HEADER_BYTES + frame.lengthBytes;
    if (endBytes > fileSizeBytes) break;
    if (frame.kind === 'record') {
      const data = Buffer.allocUnsafe(frame.lengthBytes);
      if ((await readFully(file, data, offsetBytes + FRAME_HEADER_BYTES)) < data.length) break;
      if (recordChecksum(data) !== frame.dataCrc) break;
      if (header.usedBytes + frame.lengthBytes > header.capacityBytes) break;
    }
    ops.push({
      type: 'put',
      key: keys.object(frame.objectId),
      value: encodeObjectEntry({
        fileOffsetBytes: offsetBytes,
        bytesBefore: header.usedBytes,
        fileNumber: header.filemarkCount,
        lengthBytes: frame.lengthBytes,
      }),
    });
    if (frame.kind === 'filemark') {
      ops.push({ type: 'put', key: keys.filemark(header.filemarkCount), value: encodeObjectId(frame.objectId) });
      header.filemarkCount++;
    }
    header.usedBytes += frame.lengthBytes;
    header.eodObjectId++;
    header.dataEndBytes = endBytes;
    recoveredObjects++;
  }
  return { header, ops, recoveredObjects };
}

/** Reads up to `buf.length` bytes at `offsetBytes`; fewer only at the end of the file. */
async function readFully(file: FileHandle, buf: Buffer, offsetBytes: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await file.read(buf, done, buf.length - done, offsetBytes + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
