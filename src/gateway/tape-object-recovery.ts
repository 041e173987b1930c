// Rebuilds the tape library from the object store alone (docs/object-layout.md "Tapes"): on a start
// with an empty tape catalog, `tapes/catalog.json` names the tapes and their slots, and each tape's
// `index.json` and data objects give its records and filemarks. Every tape is rebuilt eagerly
// into a fresh local medium: data objects are read whole (the object store verifies their
// SHA-256, compared with the index's too), every frame's CRC and object id are checked, and the
// records are written like a drive would write them. A tape enters the catalog (CREATING first,
// like CreateTapes) only once its data is durable.

import { createHash } from 'node:crypto';
import type { Logger } from '../../iscsi/log.js';
import type { ObjectStore } from '../cloud/object-store.js';
import type { TapeRecord } from '../store/tape-catalog-store.js';
import { decodeFrameHeader, FRAME_HEADER_BYTES, recordChecksum } from '../store/tape-frame.js';
import type { StoredTapeMedium } from '../store/tape-medium.js';
import type { TapeMediumStore } from '../store/tape-medium-store.js';
import {
  parseTapeCatalogObject,
  parseTapeObjectIndex,
  TAPE_CATALOG_OBJECT_KEY,
  tapeIndexKey,
  type TapeCatalogObjectEntry,
  type TapeObjectIndex,
} from '../store/tape-object-layout.js';
import { GatewayError } from './gateway-error.js';
import type { TapeCatalog } from './tape-catalog.js';
import type { TapeLibrary } from './tape-library.js';
import { TapeStatus } from './tape-status.js';

/** Number of tapes rebuilt (0: the catalog was not empty, or the bucket holds no tape catalog). */
export async function recoverTapesFromObjectStore(opts: {
  objectStore: ObjectStore;
  library: TapeLibrary;
  catalog: TapeCatalog;
  media: TapeMediumStore;
  log: Logger;
}): Promise<number> {
  const { objectStore, library, catalog, media, log } = opts;
  return library.exclusive(async () => {
    if (catalog.list().length > 0) return 0;
    if ((await objectStore.head(TAPE_CATALOG_OBJECT_KEY)) === null) return 0;
    const entries = parseTapeCatalogObject(await objectStore.get(TAPE_CATALOG_OBJECT_KEY)).tapes;
    for (const entry of entries) {
      const index = (await objectStore.head(tapeIndexKey(entry.barcode))) === null
        ? null
        : parseTapeObjectIndex(await objectStore.get(tapeIndexKey(entry.barcode)));
      const creating: TapeRecord = {
        barcode: entry.barcode,
        status: TapeStatus.CREATING,
        sizeBytes: entry.sizeBytes,
        worm: entry.worm,
        ...(entry.poolId !== undefined ? { poolId: entry.poolId } : {}),
        createdAt: entry.createdAt,
        location: null,
      };
      await catalog.put(creating);
      const medium = await media.create({ barcode: entry.barcode, capacityBytes: entry.sizeBytes, worm: entry.worm });
      try {
        if (index !== null) await rebuildMedium(objectStore, medium, index);
      } finally {
        await media.close(medium);
      }
      const available: TapeRecord = { ...creating, status: entry.status, location: { address: slotFor(library, entry) } };
      await catalog.put(available);
      library.placeTapes([available]);
      log.info('tape rebuilt from the object store', { barcode: entry.barcode, objects: index?.eodObjectId ?? 0, address: available.location!.address });
    }
    return entries.length;
  });
}

/** Its slot from the catalog object if this library has it empty, else the first empty storage slot. */
function slotFor(library: TapeLibrary, entry: TapeCatalogObjectEntry): number {
  const type = library.elementType(entry.address);
  if ((type === 'storage' || type === 'import-export') && library.emptyElements(type).includes(entry.address)) return entry.address;
  const empty = library.emptyElements('storage');
  if (empty.length === 0) throw new GatewayError('GW_NO_EMPTY_SLOT', `no empty storage slot for tape ${entry.barcode}`);
  return empty[0]!;
}

async function rebuildMedium(objectStore: ObjectStore, medium: StoredTapeMedium, index: TapeObjectIndex): Promise<void> {
  let objectId = 0;
  for (const object of index.dataObjects) {
    if (object.firstObjectId !== objectId) throw corrupt(index, `data object ${object.key} starts at ${object.firstObjectId}, expected ${objectId}`);
    const body = await objectStore.get(object.key);
    if (createHash('sha256').update(body).digest('hex') !== object.sha256) throw corrupt(index, `data object ${object.key} fails its SHA-256`);
    const writes: Array<Promise<unknown>> = [];
    let offsetBytes = 0;
    while (offsetBytes < body.length) {
      const frame = decodeFrameHeader(body.subarray(offsetBytes, offsetBytes + FRAME_HEADER_BYTES));
      if (frame === null || frame.objectId !== objectId) throw corrupt(index, `data object ${object.key}: no valid frame for object ${objectId}`);
      offsetBytes += FRAME_HEADER_BYTES;
      if (frame.kind === 'record') {
        const data = body.subarray(offsetBytes, offsetBytes + frame.lengthBytes);
        if (data.length !== frame.lengthBytes || recordChecksum(data) !== frame.dataCrc) {
          throw corrupt(index, `data object ${object.key}: object ${objectId} fails its CRC`);
        }
        writes.push(medium.writeRecord(data));
        offsetBytes += frame.lengthBytes;
      } else {
        writes.push(medium.writeFilemarks(1));
      }
      objectId++;
    }
    await Promise.all(writes);
    if (objectId !== object.firstObjectId + object.objectCount) throw corrupt(index, `data object ${object.key} holds ${objectId - object.firstObjectId} objects`);
  }
  if (objectId !== index.eodObjectId) throw corrupt(index, `the data objects end at ${objectId}, EOD is ${index.eodObjectId}`);
  await medium.flush();
  if (index.writeProtected) await medium.setWriteProtected(true);
}

function corrupt(index: TapeObjectIndex, message: string): GatewayError {
  return new GatewayError('GW_TAPE_INVALID_STATE', `tape ${index.barcode}: ${message}`);
}
