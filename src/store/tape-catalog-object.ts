// `tapes/catalog.json` (docs/object-layout.md "Tapes"): every tape with a place in the library, so
// a gateway with an empty cache rebuilds the library from the bucket alone.

import { z } from 'zod';
import { encodeStoredJson, parseStoredJson } from './stored-json.js';
import { tapeRecordSchema } from './tape-catalog-store.js';
import { TAPE_CATALOG_OBJECT_KEY } from './tape-object-layout.js';

/** A tape's catalog record, with the slot it rests in instead of its location. */
const tapeCatalogObjectEntrySchema = tapeRecordSchema.omit({ location: true }).extend({
  /** Element address of its slot (storage or import/export element). */
  address: z.int().nonnegative(),
});
export type TapeCatalogObjectEntry = z.infer<typeof tapeCatalogObjectEntrySchema>;

const tapeCatalogObjectSchema = z.object({
  format: z.literal(1),
  tapes: z.array(tapeCatalogObjectEntrySchema),
});
export type TapeCatalogObject = z.infer<typeof tapeCatalogObjectSchema>;

export function encodeTapeCatalogObject(catalog: TapeCatalogObject): Buffer {
  return encodeStoredJson(catalog);
}

export function parseTapeCatalogObject(body: Buffer): TapeCatalogObject {
  return parseStoredJson(tapeCatalogObjectSchema, body, TAPE_CATALOG_OBJECT_KEY);
}
