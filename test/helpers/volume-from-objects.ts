// Rebuilds a volume's bytes from the object store alone (docs/object-layout.md): head.json, then
// every chunk object it names, checked against the SHA-256 in its key. What the convergence tests
// compare with what the initiator reads.
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../../src/cloud/object-store.js';
import type { HeadManifest } from '../../src/gateway/uploader.js';
import { soleGatewayObjects } from './gateway-objects.js';

/** `store` is the bucket of one gateway (its prefix is found) or that gateway's own view. */
export async function readHeadManifest(bucket: ObjectStore, volumeId: number): Promise<HeadManifest | null> {
  const store = await soleGatewayObjects(bucket);
  if ((await store.head(`volumes/${volumeId}/head.json`)) === null) return null;
  return JSON.parse((await store.get(`volumes/${volumeId}/head.json`)).toString('utf8')) as HeadManifest;
}

/** Bytes [offsetBytes, offsetBytes + lengthBytes) of the volume as the object store holds it. */
export async function volumeFromObjects(
  bucket: ObjectStore,
  volumeId: number,
  offsetBytes: number,
  lengthBytes: number,
): Promise<Buffer> {
  const store = await soleGatewayObjects(bucket);
  const manifest = await readHeadManifest(store, volumeId);
  const out = Buffer.alloc(lengthBytes);
  if (manifest === null) return out;
  const chunkBytes = manifest.chunkSizeBytes;
  for (let index = Math.floor(offsetBytes / chunkBytes); index * chunkBytes < offsetBytes + lengthBytes; index++) {
    const sha = manifest.chunks[index.toString(16)];
    if (sha === undefined) continue;
    const body = await store.get(`volumes/${volumeId}/chunks/${index.toString(16).padStart(8, '0')}/${sha}`);
    if (createHash('sha256').update(body).digest('hex') !== sha) throw new Error(`chunk ${index} does not match its key`);
    const chunkStart = index * chunkBytes;
    const from = Math.max(offsetBytes, chunkStart);
    const to = Math.min(offsetBytes + lengthBytes, chunkStart + body.length);
    if (to > from) body.copy(out, from - offsetBytes, from - chunkStart, to - chunkStart);
  }
  return out;
}
