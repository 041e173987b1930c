// recoverTape over hand-built data files: which frames beyond the indexed EOD become objects.
// Frames are built with tape-frame.ts; each case writes a file, scans it from a header, and shows
// the recovered EOD and index entries.

import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { decodeFrameHeader, encodeFrameHeader, FRAME_HEADER_BYTES, recordChecksum } from '../../src/store/tape-frame.js';
import type { TapeHeader } from '../../src/store/tape-header.js';
import { decodeObjectEntry, TapeKeys } from '../../src/store/tape-keys.js';
import { recoverTape } from '../../src/store/tape-recovery.js';

const keys = new TapeKeys('REC001');
/** Object entry keys without their object id. */
const objectKeyPrefix = keys.object(0).subarray(0, -8);

function recordFrame(objectId: number, generation: number, data: Buffer): Buffer {
  const header = encodeFrameHeader({ kind: 'record', generation, objectId, lengthBytes: data.length, dataCrc: recordChecksum(data) });
  return Buffer.concat([header, data]);
}

function filemarkFrame(objectId: number, generation: number): Buffer {
  return encodeFrameHeader({ kind: 'filemark', generation, objectId, lengthBytes: 0, dataCrc: 0 });
}

function indexedHeader(fields: Partial<TapeHeader>): TapeHeader {
  return {
    barcode: 'REC001',
    capacityBytes: 1024 * 1024,
    earlyWarningBytes: 0,
    worm: false,
    writeProtected: false,
    eodObjectId: 0,
    filemarkCount: 0,
    usedBytes: 0,
    dataEndBytes: 0,
    generation: 0,
    ...fields,
  };
}

/** Scans `content` from `header`; returns `eod=<id> fm=<n> used=<bytes> end=<offset>` and the
 *  recovered object entries as `<id>@<offset>+<length>`. */
async function scan(t: Test, content: Buffer, header: TapeHeader): Promise<{ eod: string; objects: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'shelfgate-recovery-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'REC001.tape');
  await writeFile(path, content);
  const file = await open(path, 'r');
  try {
    const { header: h, ops } = await recoverTape(file, header, keys);
    const objects = ops
      .filter((op) => op.key.subarray(0, -8).equals(objectKeyPrefix))
      .map((op) => {
        const entry = decodeObjectEntry((op as { value: Buffer }).value);
        return `${Number(op.key.readBigUInt64BE(op.key.length - 8))}@${entry.fileOffsetBytes}+${entry.lengthBytes}`;
      });
    return { eod: `eod=${h.eodObjectId} fm=${h.filemarkCount} used=${h.usedBytes} end=${h.dataEndBytes}`, objects };
  } finally {
    await file.close();
  }
}

const A = Buffer.alloc(100, 0xaa);
const B = Buffer.alloc(100, 0xbb);
const C = Buffer.alloc(100, 0xcc);
const FRAME_A = FRAME_HEADER_BYTES + 100;

t.test('Frame.RoundTrip: header fields survive, bytes are big-endian', async (t) => {
  const buf = encodeFrameHeader({ kind: 'record', generation: 7, objectId: 0x0102030405, lengthBytes: 0x40000, dataCrc: 0xdeadbeef });
  t.equal(buf.subarray(0, 28).toString('hex'), '53475446' + '01000000' + '00000007' + '00040000' + '0000000102030405' + 'deadbeef');
  t.same(decodeFrameHeader(buf), { kind: 'record', generation: 7, objectId: 0x0102030405, lengthBytes: 0x40000, dataCrc: 0xdeadbeef });
  buf[9] ^= 1;
  t.equal(decodeFrameHeader(buf), null, 'a flipped bit fails the header CRC');
  t.equal(decodeFrameHeader(Buffer.alloc(FRAME_HEADER_BYTES)), null, 'zeros are not a frame');
});

t.test('Recovery.Clean: records and filemarks beyond the index are re-indexed', async (t) => {
  const content = Buffer.concat([recordFrame(0, 3, A), filemarkFrame(1, 3), recordFrame(2, 3, B), Buffer.alloc(4096)]);
  const r = await scan(t, content, indexedHeader({ generation: 3 }));
  t.equal(r.eod, `eod=3 fm=1 used=200 end=${2 * FRAME_A + FRAME_HEADER_BYTES}`);
  t.same(r.objects, ['0@0+100', `1@${FRAME_A}+0`, `2@${FRAME_A + FRAME_HEADER_BYTES}+100`]);
});

t.test('Recovery.FromIndexedEod: the scan starts where the index ends', async (t) => {
  const content = Buffer.concat([recordFrame(0, 3, A), recordFrame(1, 3, B)]);
  const r = await scan(t, content, indexedHeader({ generation: 3, eodObjectId: 1, usedBytes: 100, dataEndBytes: FRAME_A }));
  t.equal(r.eod, `eod=2 fm=0 used=200 end=${2 * FRAME_A}`);
  t.same(r.objects, [`1@${FRAME_A}+100`]);
});

t.test('Recovery.TornFrame: a record whose bytes fail the CRC ends the tape; whole frames behind it stay hidden', async (t) => {
  const torn = recordFrame(1, 3, B);
  torn[FRAME_HEADER_BYTES + 50] ^= 0xff;
  const content = Buffer.concat([recordFrame(0, 3, A), torn, recordFrame(2, 3, C)]);
  const r = await scan(t, content, indexedHeader({ generation: 3 }));
  t.equal(r.eod, `eod=1 fm=0 used=100 end=${FRAME_A}`);
  const short = await scan(t, content.subarray(0, FRAME_A + 60), indexedHeader({ generation: 3 }));
  t.equal(short.eod, `eod=1 fm=0 used=100 end=${FRAME_A}`, 'a frame cut short by the end of the file');
});

t.test('Recovery.StaleGeneration: frames of an older generation beyond a rewrite never come back', async (t) => {
  // Generation 3 wrote A B C; after a restart (generation 4) B was rewritten as C-sized D; the old
  // C behind it is whole, continues the object ids, and must not be taken.
  const D = Buffer.alloc(100, 0xdd);
  const content = Buffer.concat([recordFrame(0, 3, A), recordFrame(1, 4, D), recordFrame(2, 3, C)]);
  const r = await scan(t, content, indexedHeader({ generation: 4, eodObjectId: 1, usedBytes: 100, dataEndBytes: FRAME_A }));
  t.equal(r.eod, `eod=2 fm=0 used=200 end=${2 * FRAME_A}`);
  const old = await scan(t, content, indexedHeader({ generation: 5, eodObjectId: 1, usedBytes: 100, dataEndBytes: FRAME_A }));
  t.equal(old.eod, `eod=1 fm=0 used=100 end=${FRAME_A}`, 'after an ERASE at 1 (generation 5) nothing beyond is taken');
});

t.test('Recovery.WrongObjectId: a frame that does not continue the object ids ends the tape', async (t) => {
  const content = Buffer.concat([recordFrame(0, 3, A), recordFrame(5, 3, B)]);
  const r = await scan(t, content, indexedHeader({ generation: 3 }));
  t.equal(r.eod, `eod=1 fm=0 used=100 end=${FRAME_A}`);
});
