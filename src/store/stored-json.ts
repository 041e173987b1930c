// Persisted JSON read back through a zod schema: every record the stores keep in Level and every
// JSON object they keep in the object store is checked on read, so a damaged or foreign record is
// a STORE_CORRUPT error naming the record (its key or object) and the field, never a value the
// gateway silently misreads.

import type { z } from 'zod';
import { StoreError } from './store-error.js';

/** Makes the error for a corrupt record (StoreError STORE_CORRUPT unless a store has its own family). */
export type CorruptRecordError = (message: string, cause: unknown) => Error;

const storeCorrupt: CorruptRecordError = (message, cause) => new StoreError('STORE_CORRUPT', message, { cause });

export function encodeStoredJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Parses `bytes` as JSON matching `schema`. `what` names the record in the error, e.g.
 *  `volume catalog record vol1` -> "volume catalog record vol1: blockSize: Invalid input: expected number, received string". */
export function parseStoredJson<T>(schema: z.ZodType<T>, bytes: Buffer, what: string, corrupt: CorruptRecordError = storeCorrupt): T {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw corrupt(`${what} is not JSON: ${(err as Error).message}`, err);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const [first, ...more] = result.error.issues;
  const field = first!.path.length === 0 ? '(whole record)' : first!.path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
  // A bad record key ("Invalid key in record") says why through its inner issue.
  const inner = first!.code === 'invalid_key' ? `: ${first!.issues[0]?.message}` : '';
  throw corrupt(`${what}: ${field}: ${first!.message}${inner}${more.length > 0 ? ` (and ${more.length} more)` : ''}`, result.error);
}
