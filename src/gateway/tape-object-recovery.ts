// Rebuilds the tape library from the object store alone (docs/object-layout.md "Tapes"): on a start
// with an empty tape catalog, `tapes/catalog.json` names the tapes and their slots, and each tape's
// `index.json` and data objects give its records and filemarks. Every tape is rebuilt eagerly
// into a fresh local medium (store/tape-data-object.ts reads the data objects whole and checks
// their SHA-256, every frame's CRC and object id, and writes the records like a drive would). A
// tape enters the catalog (CREATING first, like CreateTapes) only once its data is durable.

import type { Logger } from '../../iscsi/log.js';
import type { ObjectStore } from '../cloud/object-store.js';
import { parseTapeCatalogObject, type TapeCatalogObjectEntry } from '../store/tape-catalog-object.js';
import type { TapeRecord } from '../store/tape-catalog-store.js';
import { restoreTapeDataObjects } from '../store/tape-data-object.js';
import type { TapeMediumStore } from '../store/tape-medium-store.js';
import { parseTapeObjectIndex } from '../store/tape-object-index.js';
import { TAPE_CATALOG_OBJECT_KEY, tapeIndexKey } from '../store/tape-object-layout.js';
import { GatewayError } from './gateway-error.js';
import type { TapeCatalog } from './tape-catalog.js';
import type { TapeLibrary } from './tape-library.js';
import { TapeStatus } from './tape-status.js';

/** Number of tapes rebuilt (0: the catalog was not empty, or the bucket holds no tape catalog).
 *  With `adopt` (recovery of a lost gateway, gateway-recovery.ts) the catalog need not be empty:
 *  tapes whose barcode this gateway has already are skipped, and `onTape` hears of each tape. */
export async function recoverTapesFromObjectStore(opts: {
  objectStore: ObjectStore;
  library: TapeLibrary;
  catalog: TapeCatalog;
  media: TapeMediumStore;
  log: Logger;
  adopt?: boolean;
  onTape?: (barcode: string, outcome: 'rebuilt' | 'skipped') => void;
}): Promise<number> {
  const { objectStore, library, catalog, media, log } = opts;
  return library.exclusive(async () => {
    if (opts.adopt !== true && catalog.list().length > 0) return 0;
    if ((await objectStore.head(TAPE_CATALOG_OBJECT_KEY)) === null) return 0;
    const entries = parseTapeCatalogObject(await objectStore.get(TAPE_CATALOG_OBJECT_KEY)).tapes.filter((entry) => {
      const exists = catalog.get(entry.barcode) !== undefined;
      if (exists) opts.onTape?.(entry.barcode, 'skipped');
      return !exists;
    });
    for (const entry of entries) {
      const index = (await objectStore.head(tapeIndexKey(entry.barcode))) === null
        ? null
        : parseTapeObjectIndex(await objectStore.get(tapeIndexKey(entry.barcode)), entry.barcode);
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
        if (index !== null) {
          await restoreTapeDataObjects(objectStore, index, medium);
          if (index.writeProtected) await medium.setWriteProtected(true);
        }
      } finally {
        await media.close(medium);
      }
      const available: TapeRecord = { ...creating, status: entry.status, location: { address: slotFor(library, entry) } };
      await catalog.put(available);
      library.placeTapes([available]);
      log.info('tape rebuilt from the object store', { barcode: entry.barcode, objects: index?.eodObjectId ?? 0, address: available.location!.address });
      opts.onTape?.(entry.barcode, 'rebuilt');
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
