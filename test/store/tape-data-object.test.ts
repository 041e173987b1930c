// Data objects of a tape in the object store (src/store/tape-data-object.ts): restoring a tape
// from them checks SHA-256, frame CRCs and object ids, and a damaged object is STORE_CORRUPT.

import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LocalObjectStore } from '../../src/cloud/local-object-store.js';
import { restoreTapeDataObjects } from '../../src/store/tape-data-object.js';
import { encodeFrameHeader, recordChecksum } from '../../src/store/tape-frame.js';
import { tapeDataObjectKey } from '../../src/store/tape-object-layout.js';
import type { TapeObjectIndex } from '../../src/store/tape-object-index.js';

const BARCODE = 'DATA0001';

/** Records and filemarks as written to a medium. */
class Written {
  readonly objects: string[] = [];
  async writeRecord(data: Buffer) {
    this.objects.push(data.toString('hex'));
    return { beyondEarlyWarning: false };
  }
  async writeFilemarks(count: number) {
    for (let i = 0; i < count; i++) this.objects.push('FM');
    return { beyondEarlyWarning: false };
  }
  async flush(): Promise<void> {}
}

/** Frames of object 0 (a record) and object 1 (a filemark). */
function body(): Buffer {
  const data = Buffer.from('c0ffee', 'hex');
  return Buffer.concat([
    encodeFrameHeader({ kind: 'record', generation: 1, objectId: 0, lengthBytes: data.length, dataCrc: recordChecksum(data) }),
    data,
    encodeFrameHeader({ kind: 'filemark', generation: 1, objectId: 1, lengthBytes: 0, dataCrc: 0 }),
  ]);
}

function indexFor(bytes: Buffer): TapeObjectIndex {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return {
    format: 1,
    barcode: BARCODE,
    capacityBytes: 1024 ** 3,
    worm: false,
    writeProtected: false,
    status: 'AVAILABLE',
    generation: 1,
    eodObjectId: 2,
    usedBytes: 3,
    filemarks: [1],
    dataObjects: [{ key: tapeDataObjectKey(BARCODE, 0, sha256), firstObjectId: 0, objectCount: 2, sizeBytes: bytes.length, sha256, filemarks: [1], lastGeneration: 1 }],
  };
}

const work = await mkdtemp(join(tmpdir(), 'shelfgate-tape-data-object-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const store = await LocalObjectStore.open(join(work, 'objects'));

t.test('TapeDataObject.Restores', async (t) => {
  const bytes = body();
  const index = indexFor(bytes);
  await store.put(index.dataObjects[0]!.key, bytes);
  const medium = new Written();
  await restoreTapeDataObjects(store, index, medium);
  t.same(medium.objects, ['c0ffee', 'FM']);
});

t.test('TapeDataObject.CorruptFrame', async (t) => {
  const bytes = body();
  bytes[32] ^= 0xff; // the record's first byte: its CRC no longer matches
  const index = indexFor(bytes);
  await store.put(index.dataObjects[0]!.key, bytes);
  await t.rejects(restoreTapeDataObjects(store, index, new Written()), {
    code: 'STORE_CORRUPT',
    message: `tape ${BARCODE}: data object ${index.dataObjects[0]!.key}: object 0 fails its CRC`,
  });
});

t.test('TapeDataObject.WrongObjectCount', async (t) => {
  const bytes = body();
  const index = indexFor(bytes);
  await store.put(index.dataObjects[0]!.key, bytes);
  const short = { ...index, eodObjectId: 3 };
  await t.rejects(restoreTapeDataObjects(store, short, new Written()), { code: 'STORE_CORRUPT', message: `tape ${BARCODE}: the data objects end at 2, EOD is 3` });
  const other = { ...index, dataObjects: [{ ...index.dataObjects[0]!, sha256: 'ab'.repeat(32) }] };
  await t.rejects(restoreTapeDataObjects(store, other, new Written()), {
    code: 'STORE_CORRUPT',
    message: `tape ${BARCODE}: data object ${index.dataObjects[0]!.key} fails its SHA-256`,
  });
});
