// The archive stream of a tape (src/store/tape-archive-stream.ts): bytes fixed by a commented
// fixture, a round trip through parts of any size, and damaged streams refused as STORE_CORRUPT.

import t from 'tap';
import type { TapeReadResult } from '../../iscsi/device.js';
import {
  encodeTapeArchiveStream,
  matchesTapeArchiveManifest,
  TapeArchiveStreamDecoder,
  tapeArchiveStreamSizeBytes,
} from '../../src/store/tape-archive-stream.js';

type TapeObject = { kind: 'record'; data: Buffer } | { kind: 'filemark' };

/** An in-memory tape: what the stream reads from and writes to. */
class ListTape {
  readonly objects: TapeObject[];
  #position = 0;
  constructor(objects: TapeObject[] = []) {
    this.objects = objects;
  }
  async rewind(): Promise<void> {
    this.#position = 0;
  }
  async read(): Promise<TapeReadResult> {
    return this.objects[this.#position++] ?? { kind: 'end-of-data' };
  }
  async writeRecord(data: Buffer) {
    this.objects.push({ kind: 'record', data });
    return { beyondEarlyWarning: false };
  }
  async writeFilemarks(count: number) {
    for (let i = 0; i < count; i++) this.objects.push({ kind: 'filemark' });
    return { beyondEarlyWarning: false };
  }
  async flush(): Promise<void> {}
}

const record = (hex: string): TapeObject => ({ kind: 'record', data: Buffer.from(hex, 'hex') });

async function encode(tape: ListTape, partSizeBytes: number): Promise<{ parts: Buffer[]; summary: Awaited<ReturnType<typeof encodeTapeArchiveStream>> }> {
  const parts: Buffer[] = [];
  const summary = await encodeTapeArchiveStream(tape, partSizeBytes, async (body) => {
    parts.push(Buffer.from(body));
  });
  return { parts, summary };
}

t.test('TapeArchiveStream.Bytes', async (t) => {
  const tape = new ListTape([record('a1a2a3'), record('b1b2b3'), { kind: 'filemark' }, record('c1')]);
  const { parts, summary } = await encode(tape, 1024);
  const hex = Buffer.concat(parts).toString('hex');
  t.equal(
    hex,
    [
      '5347544150453031', // "SGTAPE01"
      '0100000000000003', 'a1a2a3', // record, 3 bytes
      '0100000000000003', 'b1b2b3',
      '0200000000000000', // filemark
      '0100000000000001', 'c1',
    ].join(''),
  );
  t.same(summary, { format: 1, recordCount: 3, filemarkCount: 1, dataBytes: 7, streamSizeBytes: 47, runs: [[3, 2], [-1, 1], [1, 1]] });
  t.equal(tapeArchiveStreamSizeBytes(7, 4), 47, 'the size is known before streaming');
});

t.test('TapeArchiveStream.RoundTripAnyChunking', async (t) => {
  const source = new ListTape([record('00'.repeat(100)), { kind: 'filemark' }, { kind: 'filemark' }, record('11'.repeat(37)), record('22'.repeat(37))]);
  const { parts, summary } = await encode(source, 16);
  t.ok(parts.slice(0, -1).every((p) => p.length === 16), 'every part but the last is the part size');
  const stream = Buffer.concat(parts);
  for (const chunkBytes of [1, 7, 16, 1000]) {
    const target = new ListTape();
    const decoder = new TapeArchiveStreamDecoder(target);
    for (let offset = 0; offset < stream.length; offset += chunkBytes) await decoder.push(stream.subarray(offset, offset + chunkBytes));
    const rebuilt = await decoder.end();
    t.same(target.objects, source.objects, `chunks of ${chunkBytes}: the same objects`);
    t.ok(matchesTapeArchiveManifest(rebuilt, { ...summary, sha256TreeHash: '' }), `chunks of ${chunkBytes}: matches the manifest`);
  }
});

t.test('TapeArchiveStream.Corrupt', async (t) => {
  const { parts } = await encode(new ListTape([record('a1a2a3')]), 1024);
  const stream = Buffer.concat(parts);

  const badMagic = Buffer.from(stream);
  badMagic[0] = 0x58;
  await t.rejects(new TapeArchiveStreamDecoder(new ListTape()).push(badMagic), { code: 'STORE_CORRUPT', message: 'archive is not a shelfgate tape stream' });

  const badKind = Buffer.from(stream);
  badKind[8] = 7;
  await t.rejects(new TapeArchiveStreamDecoder(new ListTape()).push(badKind), { code: 'STORE_CORRUPT', message: 'archive stream has an object of kind 7' });

  const truncated = new TapeArchiveStreamDecoder(new ListTape());
  await truncated.push(stream.subarray(0, stream.length - 1));
  await t.rejects(truncated.end(), { code: 'STORE_CORRUPT', message: 'archive stream ends inside an object' });
});
