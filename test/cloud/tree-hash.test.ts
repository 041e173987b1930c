import { createHash } from 'node:crypto';
import t from 'tap';
import { combineTreeHashes, isTreeHashAligned, treeHash, TreeHasher, treeHashAlignedNodes, treeHashHex } from '../../src/cloud/tree-hash.js';
import { patternBytes } from './object-store-contract.js';

const MIB = 1024 * 1024;
const sha256 = (...chunks: Buffer[]): Buffer => chunks.reduce((h, c) => h.update(c), createHash('sha256')).digest();

t.test('TreeHash.Definition: 1 MiB leaves, pairs hashed, odd node promoted (Glacier "Computing Checksums")', async (t) => {
  t.equal(treeHashHex(Buffer.alloc(0)), sha256().toString('hex'), 'empty body: SHA-256 of nothing');
  const small = Buffer.from('abc');
  t.equal(treeHashHex(small), sha256(small).toString('hex'), 'one leaf: plain SHA-256');
  const body = patternBytes(3 * MIB + 5, 7);
  const [a, b, c, d] = [0, 1, 2, 3].map((i) => sha256(body.subarray(i * MIB, (i + 1) * MIB)));
  // 4 leaves: ((a b) (c d)); d is the 5-byte tail.
  t.equal(treeHashHex(body), sha256(sha256(a, b), sha256(c, d)).toString('hex'));
  const three = body.subarray(0, 3 * MIB);
  t.equal(treeHashHex(three), sha256(sha256(a, b), c).toString('hex'), '3 leaves: c promoted');
});

t.test('TreeHash.Incremental: any chunking gives the same root; parts combine into the archive hash', async (t) => {
  const body = patternBytes(7 * MIB + 3, 8);
  const expected = treeHashHex(body);
  for (const chunkBytes of [4096, MIB - 1, MIB, 3 * MIB + 1]) {
    const hasher = new TreeHasher();
    for (let i = 0; i < body.length; i += chunkBytes) hasher.update(body.subarray(i, i + chunkBytes));
    t.equal(hasher.digest().toString('hex'), expected, `chunks of ${chunkBytes}`);
  }
  for (const partBytes of [MIB, 2 * MIB, 4 * MIB]) {
    const parts = [];
    for (let i = 0; i < body.length; i += partBytes) parts.push(treeHash(body.subarray(i, i + partBytes)));
    t.equal(combineTreeHashes(parts).toString('hex'), expected, `parts of ${partBytes / MIB} MiB`);
  }
});

t.test('TreeHash.Alignment: tree-hash aligned ranges and their decomposition', async (t) => {
  const size = 7 * MIB + 3;
  t.ok(isTreeHashAligned({ offsetBytes: 0, lengthBytes: 4 * MIB }, size));
  t.ok(isTreeHashAligned({ offsetBytes: 4 * MIB, lengthBytes: 3 * MIB + 3 }, size), 'node truncated at the end');
  t.ok(isTreeHashAligned({ offsetBytes: 6 * MIB, lengthBytes: MIB + 3 }, size));
  t.notOk(isTreeHashAligned({ offsetBytes: 0, lengthBytes: 3 * MIB }, size));
  t.notOk(isTreeHashAligned({ offsetBytes: 2 * MIB, lengthBytes: 4 * MIB }, size));
  t.notOk(isTreeHashAligned({ offsetBytes: 100, lengthBytes: MIB }, size));
  t.same(treeHashAlignedNodes({ offsetBytes: MIB, lengthBytes: 6 * MIB + 3 }, size), [
    { offsetBytes: MIB, lengthBytes: MIB },
    { offsetBytes: 2 * MIB, lengthBytes: 2 * MIB },
    { offsetBytes: 4 * MIB, lengthBytes: 3 * MIB + 3 },
  ]);
  t.same(treeHashAlignedNodes({ offsetBytes: 0, lengthBytes: 3 * MIB }, size), [
    { offsetBytes: 0, lengthBytes: 2 * MIB },
    { offsetBytes: 2 * MIB, lengthBytes: MIB },
  ]);
});
