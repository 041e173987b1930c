// Volume manifests in the object store (docs/object-layout.md "Manifest"): a snapshot,
// `gateways/<gw>/snapshots/<snapId>.json` (before per-gateway prefixes:
// `volumes/<volumeId>/snapshots/<snapId>.json`), read back when a volume is restored from it on
// any gateway of the bucket, and a volume's latest uploaded state, `volumes/<volumeId>/head.json`.
// Both list the chunks and where their objects live; garbage collection marks from them.

import { z } from 'zod';
import { parseStoredJson } from './stored-json.js';
import type { ObjectChunkState } from './storage-engine.js';

/** objectChunkIndex in lower-case hex, without padding (the manifest's key form). */
const chunkIndexHex = z.string().regex(/^[0-9a-f]+$/, 'must be a lower-case hex chunk index');
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in lower-case hex');

/** The chunk list both manifests share. */
const chunkListShape = {
  /** objectChunkIndex (hex) -> SHA-256 (hex); absent = zeros. */
  chunks: z.record(chunkIndexHex, sha256Hex),
  /** objectChunkIndex (hex) -> id of the volume whose chunk objects hold it, where that is not
   *  `volumeId` (chunks of a volume restored from a snapshot that were never rewritten). */
  chunkVolumes: z.record(chunkIndexHex, z.int().nonnegative()).optional(),
  /** objectChunkIndex (hex) -> the gateway whose prefix holds that volume, where that is not
   *  `gatewayId` (a volume restored from another gateway's snapshot). */
  chunkGateways: z.record(chunkIndexHex, z.string()).optional(),
};

const snapshotManifestSchema = z.object({
  /** 1: before per-gateway prefixes (no gatewayId, description, volume name or type). */
  format: z.union([z.literal(1), z.literal(2)]),
  gatewayId: z.string().optional(),
  volumeId: z.int().nonnegative(),
  volumeName: z.string().optional(),
  volumeType: z.enum(['cached', 'stored']).optional(),
  snapId: z.string(),
  description: z.string().optional(),
  createdAt: z.string(),
  sizeBytes: z.int().nonnegative(),
  blockSize: z.int().positive(),
  chunkSizeBytes: z.int().positive(),
  ...chunkListShape,
});
export type SnapshotManifest = z.infer<typeof snapshotManifestSchema>;

const headManifestSchema = z.object({
  format: z.union([z.literal(1), z.literal(2)]),
  gatewayId: z.string().optional(),
  volumeId: z.int().nonnegative(),
  name: z.string(),
  type: z.enum(['cached', 'stored']).optional(),
  createdAt: z.string(),
  /** When this state was uploaded (format 2). */
  updatedAt: z.string().optional(),
  sizeBytes: z.int().nonnegative(),
  blockSize: z.int().positive(),
  chunkSizeBytes: z.int().positive(),
  ...chunkListShape,
});
export type HeadManifest = z.infer<typeof headManifestSchema>;

export type ChunkList = Pick<SnapshotManifest, 'chunks' | 'chunkVolumes' | 'chunkGateways'>;

/** The manifest stored under `key` (named in the error when it does not match). */
export function parseSnapshotManifest(body: Buffer, key: string): SnapshotManifest {
  return parseStoredJson(snapshotManifestSchema, body, key);
}

export function parseHeadManifest(body: Buffer, key: string): HeadManifest {
  return parseStoredJson(headManifestSchema, body, key);
}

/** A chunk list from uploaded chunk states of volume `volumeId` (sources other than the volume
 *  itself are named). */
export function chunkListOf(states: Iterable<[number, Pick<ObjectChunkState, 'sha256' | 'sourceVolumeId' | 'sourceGatewayId'>]>, volumeId: number): ChunkList {
  const chunks: Record<string, string> = {};
  const chunkVolumes: Record<string, number> = {};
  const chunkGateways: Record<string, string> = {};
  for (const [index, state] of states) {
    const indexHex = index.toString(16);
    chunks[indexHex] = state.sha256.toString('hex');
    if (state.sourceGatewayId !== undefined) chunkGateways[indexHex] = state.sourceGatewayId;
    if (state.sourceVolumeId !== undefined && (state.sourceVolumeId !== volumeId || state.sourceGatewayId !== undefined)) {
      chunkVolumes[indexHex] = state.sourceVolumeId;
    }
  }
  return {
    chunks,
    ...(Object.keys(chunkVolumes).length > 0 ? { chunkVolumes } : {}),
    ...(Object.keys(chunkGateways).length > 0 ? { chunkGateways } : {}),
  };
}

export interface ManifestChunk {
  objectChunkIndex: number;
  sha256: Buffer;
  sourceVolumeId: number;
  /** The gateway holding the object: the manifest's own gateway unless named per chunk;
   *  undefined for a format-1 manifest (the gateway that reads it). */
  sourceGatewayId: string | undefined;
}

/** Every chunk of a manifest written by `gatewayId` (undefined: the reader's own, format 1). */
export function manifestChunks(manifest: ChunkList & { volumeId: number; gatewayId?: string | undefined }): ManifestChunk[] {
  return Object.entries(manifest.chunks).map(([indexHex, shaHex]) => ({
    objectChunkIndex: Number.parseInt(indexHex, 16),
    sha256: Buffer.from(shaHex, 'hex'),
    sourceVolumeId: manifest.chunkVolumes?.[indexHex] ?? manifest.volumeId,
    sourceGatewayId: manifest.chunkGateways?.[indexHex] ?? manifest.gatewayId,
  }));
}
