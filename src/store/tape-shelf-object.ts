// The virtual tape shelf in the object store (docs/object-layout.md "Tapes"): `tapes/shelf.json`
// under the gateway's prefix lists every tape archived and not deleted, with what a gateway needs
// to retrieve it from the archive store (archive id, tree hash, part size, checksum manifest,
// pool and retention dates). The Level shelf (tape-shelf-store.ts) stays the gateway's own truth;
// this copy is what recovery of a lost gateway reads (gateway-recovery.ts).

import { z } from 'zod';
import { parseStoredJson } from './stored-json.js';
import { tapeShelfRecordSchema, type TapeShelfRecord } from './tape-shelf-store.js';

export const TAPE_SHELF_OBJECT_KEY = 'tapes/shelf.json';

const tapeShelfObjectSchema = z.object({
  format: z.literal(1),
  tapes: z.array(tapeShelfRecordSchema),
});
export type TapeShelfObject = z.infer<typeof tapeShelfObjectSchema>;

export function encodeTapeShelfObject(tapes: TapeShelfRecord[]): Buffer {
  const body: TapeShelfObject = { format: 1, tapes: tapes.map((t) => ({ ...t, job: null })) };
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function parseTapeShelfObject(body: Buffer): TapeShelfObject {
  return parseStoredJson(tapeShelfObjectSchema, body, TAPE_SHELF_OBJECT_KEY);
}
