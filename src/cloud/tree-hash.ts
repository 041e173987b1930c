// The SHA-256 tree hash of the Glacier API (Amazon S3 Glacier Developer Guide, "Computing
// Checksums"): SHA-256 each 1 MiB chunk (the last may be shorter), then hash the concatenation of
// each adjacent pair, promoting an odd last node unchanged, until one root is left. An empty body
// has one empty leaf, SHA-256(""). Parts of 1 MiB × 2^n are whole subtrees, so an archive's tree
// hash is the tree hash of its parts' tree hashes (combineTreeHashes), and a byte range is
// "tree-hash aligned" when it is exactly the span of one node (treeHashAlignedNodes).

import { createHash } from 'node:crypto';

export const TREE_HASH_LEAF_BYTES = 1024 * 1024;

function sha256(...chunks: Buffer[]): Buffer {
  const hash = createHash('sha256');
  for (const chunk of chunks) {
    hash.update(chunk);
  }
  return hash.digest();
}

/** Reduces sibling hashes (left to right, one tree level at a time) to their root. */
export function combineTreeHashes(hashes: readonly Buffer[]): Buffer {
  if (hashes.length === 0) {
    return sha256();
  }
  let level = [...hashes];
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? sha256(level[i], level[i + 1]) : level[i]);
    }
    level = next;
  }
  return level[0];
}

/** The tree hash of a whole buffer (32 bytes). */
export function treeHash(body: Buffer): Buffer {
  const hasher = new TreeHasher();
  hasher.update(body);
  return hasher.digest();
}

export function treeHashHex(body: Buffer): string {
  return treeHash(body).toString('hex');
}

/** Incremental tree hash of a stream of any chunking: full subtrees are kept on a stack (sizes
 *  2^k leaves, decreasing left to right), so memory is O(log n) for a 15 TiB tape. */
export class TreeHasher {
  readonly #stack: Array<{ level: number; hash: Buffer }> = [];
  #leaf = createHash('sha256');
  #leafBytes = 0;
  #totalBytes = 0;

  get totalBytes(): number {
    return this.#totalBytes;
  }

  update(chunk: Buffer): this {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(TREE_HASH_LEAF_BYTES - this.#leafBytes, chunk.length - offset);
      this.#leaf.update(chunk.subarray(offset, offset + take));
      this.#leafBytes += take;
      offset += take;
      if (this.#leafBytes === TREE_HASH_LEAF_BYTES) {
        this.#pushLeaf();
      }
    }
    this.#totalBytes += chunk.length;
    return this;
  }

  digest(): Buffer {
    if (this.#leafBytes > 0 || this.#stack.length === 0) {
      this.#pushLeaf();
    }
    // Odd nodes are promoted unchanged, so the root folds the stack from the right.
    let root = this.#stack[this.#stack.length - 1].hash;
    for (let i = this.#stack.length - 2; i >= 0; i--) {
      root = sha256(this.#stack[i].hash, root);
    }
    return root;
  }

  #pushLeaf(): void {
    let node: { level: number; hash: Buffer } = { level: 0, hash: this.#leaf.digest() };
    this.#leaf = createHash('sha256');
    this.#leafBytes = 0;
    while (this.#stack.length > 0 && this.#stack[this.#stack.length - 1].level === node.level) {
      const left = this.#stack.pop()!;
      node = { level: node.level + 1, hash: sha256(left.hash, node.hash) };
    }
    this.#stack.push(node);
  }
}

export interface ByteSpan {
  offsetBytes: number;
  lengthBytes: number;
}

/** True when [offsetBytes, offsetBytes + lengthBytes) is exactly one node of the tree of an
 *  archive of archiveSizeBytes (Glacier Developer Guide, "Receiving Checksums When Downloading
 *  Data"): the offset is a multiple of the node's span and the range ends at the span's end or at
 *  the archive's end. */
export function isTreeHashAligned(span: ByteSpan, archiveSizeBytes: number): boolean {
  const { offsetBytes, lengthBytes } = span;
  if (lengthBytes <= 0 || offsetBytes % TREE_HASH_LEAF_BYTES !== 0 || offsetBytes + lengthBytes > archiveSizeBytes) {
    return false;
  }
  for (let nodeBytes = TREE_HASH_LEAF_BYTES; ; nodeBytes *= 2) {
    if (offsetBytes % nodeBytes !== 0) {
      return false;
    }
    const endBytes = Math.min(offsetBytes + nodeBytes, archiveSizeBytes);
    if (offsetBytes + lengthBytes === endBytes) {
      return true;
    }
    if (offsetBytes + lengthBytes < endBytes) {
      return false;
    }
  }
}

/** Splits a range that starts 1 MiB-aligned and ends 1 MiB-aligned or at the archive's end into
 *  the fewest tree-hash aligned spans, left to right (greedy: the largest node at each offset). */
export function treeHashAlignedNodes(span: ByteSpan, archiveSizeBytes: number): ByteSpan[] {
  const out: ByteSpan[] = [];
  const endBytes = span.offsetBytes + span.lengthBytes;
  let offsetBytes = span.offsetBytes;
  while (offsetBytes < endBytes) {
    let nodeBytes = TREE_HASH_LEAF_BYTES;
    while (
      offsetBytes + nodeBytes < archiveSizeBytes &&
      offsetBytes % (nodeBytes * 2) === 0 &&
      Math.min(offsetBytes + nodeBytes * 2, archiveSizeBytes) <= endBytes
    ) {
      nodeBytes *= 2;
    }
    const nodeEndBytes = Math.min(offsetBytes + nodeBytes, archiveSizeBytes, endBytes);
    out.push({ offsetBytes, lengthBytes: nodeEndBytes - offsetBytes });
    offsetBytes = nodeEndBytes;
  }
  return out;
}
