// A snapshot manifest, `volumes/<volumeId>/snapshots/<snapId>.json` (docs/object-layout.md
// "Manifest"): the snapshot itself, read back when a volume is restored from it or the next
// snapshot of the volume compares chunks with it.

import { z } from 'zod';
import { parseStoredJson } from './stored-json.js';

/** objectChunkIndex in lower-case hex, without padding (the manifest's key form). */
const chunkIndexHex = z.string().regex(/^[0-9a-f]+$/, 'must be a lower-case hex chunk index');

const snapshotManifestSchema = z.object({
  format: z.literal(1),
  volumeId: z.int().nonnegative(),
  snapId: z.string(),
  createdAt: z.string(),
  sizeBytes: z.int().nonnegative(),
  blockSize: z.int().positive(),
  chunkSizeBytes: z.int().positive(),
  /** objectChunkIndex (hex) -> SHA-256 (hex); absent = zeros. */
  chunks: z.record(chunkIndexHex, z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in lower-case hex')),
  /** objectChunkIndex (hex) -> id of the volume whose chunk objects hold it, where that is not
   *  `volumeId` (chunks of a volume restored from a snapshot that were never rewritten). */
  chunkVolumes: z.record(chunkIndexHex, z.int().nonnegative()).optional(),
});
export type SnapshotManifest = z.infer<typeof snapshotManifestSchema>;

/** The manifest stored under `key` (named in the error when it does not match). */
export function parseSnapshotManifest(body: Buffer, key: string): SnapshotManifest {
  return parseStoredJson(snapshotManifestSchema, body, key);
}
