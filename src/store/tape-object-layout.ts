// Tapes in the object store (docs/object-layout.md "Tapes"): the keys and sizes of the layout.
//
//   tapes/catalog.json                                   the library (tape-catalog-object.ts)
//   tapes/<barcode>/index.json                           the tape's map (tape-object-index.ts)
//   tapes/<barcode>/data/<firstObjectId 12 hex>-<sha256 hex>   whole frames (tape-data-object.ts), ≤ ~8 MiB
//
// A data object is the tape's own frames copied from its data file: 32-byte self-checking header
// (kind, logical object id, length, CRC-32, generation) and the record bytes, so a reader checks
// every record without the index. Data objects are content-addressed: a re-upload after a
// truncation never replaces an object the current index.json refers to.
//
// Level (what was uploaded, so an upload resumes after a restart; tape-object-index.ts):
//   0x08 TAPE_UPLOAD | barcode (ASCII)   -> the TapeObjectIndex last put as index.json
// Key space 0x08 extends keys.ts (0x07 tape shelf, 0x10 settings).

export const TAPE_UPLOAD_KEY_SPACE = 0x08;
export const TAPE_CATALOG_OBJECT_KEY = 'tapes/catalog.json';
/** A data object is closed before a record that would take it beyond this size, and after a filemark. */
export const TAPE_DATA_OBJECT_TARGET_BYTES = 8 * 1024 * 1024;

export function tapeIndexKey(barcode: string): string {
  return `tapes/${barcode}/index.json`;
}

export function tapeDataObjectKey(barcode: string, firstObjectId: number, sha256Hex: string): string {
  return `tapes/${barcode}/data/${firstObjectId.toString(16).padStart(12, '0')}-${sha256Hex}`;
}
